package pdp

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// Leaves are hashed in blocks of 2^blockHeight leaves: small enough to stay in L1/L2 cache,
// large enough that the per-block bookkeeping is negligible.
const (
	blockHeight = 8
	blockLeaves = 1 << blockHeight
	blockRaw    = fr32RawChunk << (blockHeight - 2) // raw bytes that fill one block
)

// subtreeStack folds aligned subtree roots, pushed left to right, into the root of a larger
// tree. It works like a binary counter over leaves: bit h of leaves is set exactly when
// nodes[h] holds a complete left subtree still waiting for its right sibling.
type subtreeStack struct {
	nodes  [MaxHeight + 1]Node
	leaves uint64 // leaves covered so far

	// recordHeight >= 0 makes the stack append every node of that height it sees, in order,
	// to record (the TreeTop's section roots).
	recordHeight int
	record       []Node
}

// push adds the root n of a complete subtree of 2^h leaves. The leaves covered so far must be
// a multiple of 2^h, which holds whenever pushes never grow in height except by carrying.
func (s *subtreeStack) push(n Node, h int) {
	for {
		if h == s.recordHeight {
			s.record = append(s.record, n)
		}
		bit := uint64(1) << h
		if s.leaves&bit == 0 {
			s.leaves |= bit
			s.nodes[h] = n
			return
		}
		s.leaves &^= bit
		n = HashNode(&s.nodes[h], &n)
		h++
	}
}

// root returns the root of the tree of height H over everything pushed, with zero subtrees
// after the data. It records the partial (data-covering) node at recordHeight, if any, so it
// must be called once, at the end. The leaves pushed must not exceed 2^H.
func (s *subtreeStack) root(H int) Node {
	if s.leaves == 0 {
		return zeroRoots[H]
	}
	h0 := bits.TrailingZeros64(s.leaves)
	if h0 >= H {
		return s.nodes[H]
	}
	cur := s.nodes[h0]
	for h := h0; h < H; h++ {
		if h > h0 && s.leaves&(uint64(1)<<h) != 0 {
			cur = HashNode(&s.nodes[h], &cur)
		} else {
			cur = HashNode(&cur, &zeroRoots[h])
		}
		if h+1 == s.recordHeight {
			s.record = append(s.record, cur)
		}
	}
	return cur
}

func (s *subtreeStack) reset(recordHeight int, record []Node) {
	s.leaves = 0
	s.recordHeight = recordHeight
	s.record = record
}

var zeroBlock [blockRaw]byte

// subtreeHasher computes the root of a subtree from raw bytes, block by block, with a fixed
// scratch buffer: no allocation per block.
type subtreeHasher struct {
	stack  subtreeStack
	leaves [blockLeaves]Node
}

// writeBlocks hashes raw, whose length must be a multiple of blockRaw.
func (t *subtreeHasher) writeBlocks(raw []byte) {
	rec := t.stack.recordHeight
	for len(raw) >= blockRaw {
		if bytes.Equal(raw[:blockRaw], zeroBlock[:]) {
			// Sparse files and zero padding are common; an all-zero block's root is known.
			if rec >= 0 && rec < blockHeight {
				for range blockLeaves >> rec {
					t.stack.record = append(t.stack.record, zeroRoots[rec])
				}
			}
			t.stack.push(zeroRoots[blockHeight], blockHeight)
			raw = raw[blockRaw:]
			continue
		}
		Pad(nodeBytes(t.leaves[:]), raw[:blockRaw])
		nodes := t.leaves[:]
		for l := 0; l < blockHeight; l++ {
			if l == rec {
				t.stack.record = append(t.stack.record, nodes...)
			}
			hashPairs(nodes[:len(nodes)/2], nodes)
			nodes = nodes[:len(nodes)/2]
		}
		t.stack.push(nodes[0], blockHeight)
		raw = raw[blockRaw:]
	}
}

// finish hashes the final partial block tail (shorter than blockRaw) and returns the root of
// the tree of height H (>= 2) over everything written, zero-extended.
func (t *subtreeHasher) finish(tail []byte, H int) Node {
	if len(tail) == 0 {
		return t.stack.root(H)
	}
	n := padZeroExtended(nodeBytes(t.leaves[:]), tail) / NodeSize
	top := min(blockHeight, H)
	rec := t.stack.recordHeight
	nodes := t.leaves[:n]
	for l := 0; l < top; l++ {
		if l == rec {
			t.stack.record = append(t.stack.record, nodes...)
		}
		if len(nodes)%2 == 1 {
			nodes = t.leaves[:len(nodes)+1]
			nodes[len(nodes)-1] = zeroRoots[l]
		}
		hashPairs(nodes[:len(nodes)/2], nodes)
		nodes = nodes[:len(nodes)/2]
	}
	if top < blockHeight {
		// The whole tree is smaller than one block, so nothing was pushed before.
		return nodes[0]
	}
	t.stack.push(nodes[0], blockHeight)
	return t.stack.root(H)
}

// ErrTooLarge is returned when a payload grows past MaxRawSize.
var ErrTooLarge = errors.New("pdp: payload larger than MaxRawSize")

// ErrFinished is returned when a Calc is used after Finish without a Reset.
var ErrFinished = errors.New("pdp: Calc already finished")

// The stream is cut into chunks of 2^chunkHeight leaves (chunkRaw raw bytes). Each chunk is a
// complete aligned subtree, so workers hash chunks independently and the chunk roots are
// folded in order: commP(A||B) = HashNode(commP(A), commP(B)) for aligned halves.
const (
	chunkHeight = 15
	chunkRaw    = fr32RawChunk << (chunkHeight - 2) // 1,040,384 bytes
)

// chunkJob carries one chunk to a worker and its results back.
type chunkJob struct {
	raw      []byte // chunkRaw bytes
	root     Node
	sections []Node        // section roots inside the chunk, when the layer is at most chunkHeight
	done     chan struct{} // receives one value when root and sections are ready
}

// chunkJobs recycles chunk buffers between Calcs, so hashing many small pieces does not
// allocate a megabyte each time.
var chunkJobs = sync.Pool{New: func() any {
	return &chunkJob{raw: make([]byte, chunkRaw), done: make(chan struct{}, 1)}
}}

// chunkWorkers is the goroutine pool of one Calc while it has work in flight.
type chunkWorkers struct {
	jobs      chan *chunkJob
	abandoned atomic.Bool // set by stop: skip remaining jobs
	once      sync.Once
	wg        sync.WaitGroup
}

func startChunkWorkers(n, capacity, recordHeight int) *chunkWorkers {
	w := &chunkWorkers{jobs: make(chan *chunkJob, capacity)}
	w.wg.Add(n)
	for range n {
		go w.run(recordHeight)
	}
	return w
}

func (w *chunkWorkers) run(recordHeight int) {
	defer w.wg.Done()
	t := new(subtreeHasher)
	for j := range w.jobs {
		if !w.abandoned.Load() {
			t.stack.reset(recordHeight, j.sections[:0])
			t.writeBlocks(j.raw)
			j.root = t.stack.root(chunkHeight)
			j.sections = t.stack.record
		}
		j.done <- struct{}{}
	}
}

// stop ends the workers, skipping any remaining jobs, and waits until they have exited. It
// is safe to call more than once (Reset, then the cleanup of a collected Calc).
func (w *chunkWorkers) stop() {
	w.abandoned.Store(true)
	w.once.Do(func() { close(w.jobs) })
	w.wg.Wait()
}

// Calc computes the piece commitment of a raw payload written to it in any chunking. It hashes
// fixed-size chunks on GOMAXPROCS worker goroutines and folds their roots in order, with a
// bounded amount of memory (about 2·GOMAXPROCS MiB) whatever the payload size. With a
// non-zero layer height it also keeps the upper tree (TreeTop) for proving.
//
// Calc implements io.Writer, io.ReaderFrom and hash.Hash (Sum appends the 32-byte root of the
// data written so far). Workers start with the first full chunk (about 1 MiB) and are released by
// Finish or Reset (or, as a safety net, when an abandoned Calc is garbage collected).
type Calc struct {
	layerHeight uint8
	written     uint64
	err         error // sticky: ErrTooLarge
	finished    bool

	cur  *chunkJob // chunk being filled
	fill int       // bytes of cur.raw filled

	workers     *chunkWorkers
	maxInflight int         // chunks dispatched but not folded, at most (2 per worker)
	inflight    []*chunkJob // dispatched chunks, oldest first
	free        []*chunkJob

	fold     subtreeStack // chunk roots; records sections when the layer is above chunkHeight
	sections []Node       // section roots, when the layer is at most chunkHeight
	tail     subtreeHasher
	result   Commitment
}

var (
	_ hash.Hash     = (*Calc)(nil)
	_ io.ReaderFrom = (*Calc)(nil)
)

// Commitment is the result of a Calc: the piece CID and, when asked for, the cached upper tree.
type Commitment struct {
	Piece PieceCID
	Top   *TreeTop // nil when the Calc was created with layer height 0
}

// NewCalc returns a Calc. layerHeight 0 keeps no TreeTop; otherwise it must be 2..MaxHeight
// (NewCalc panics on 1 or above MaxHeight) and the TreeTop starts at that height, or at the
// piece height when the piece is smaller.
func NewCalc(layerHeight uint8) *Calc {
	if layerHeight == 1 || layerHeight > MaxHeight {
		panic(fmt.Sprintf("pdp: NewCalc layer height %d: want 0 or 2..%d", layerHeight, MaxHeight))
	}
	c := &Calc{layerHeight: layerHeight}
	c.fold.reset(c.foldRecordHeight(), nil)
	return c
}

// foldRecordHeight is the height whose nodes the chunk-root fold records.
func (c *Calc) foldRecordHeight() int {
	if c.layerHeight > chunkHeight {
		return int(c.layerHeight)
	}
	return -1
}

// chunkRecordHeight is the height whose nodes chunk hashing records.
func (c *Calc) chunkRecordHeight() int {
	if c.layerHeight != 0 && c.layerHeight <= chunkHeight {
		return int(c.layerHeight)
	}
	return -1
}

// Size returns 32, the size of a root.
func (c *Calc) Size() int { return NodeSize }

// BlockSize returns 127, the raw bytes of one fr32 chunk.
func (c *Calc) BlockSize() int { return fr32RawChunk }

// Written returns the raw bytes written so far.
func (c *Calc) Written() uint64 { return c.written }

// Write adds p to the payload. It fails with ErrTooLarge (and the Calc stays failed until
// Reset) when the payload would exceed MaxRawSize, and with ErrFinished after Finish.
func (c *Calc) Write(p []byte) (int, error) {
	if err := c.checkWrite(uint64(len(p))); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if c.cur == nil {
			c.cur = c.nextJob()
		}
		k := copy(c.cur.raw[c.fill:], p)
		c.fill += k
		c.written += uint64(k)
		p = p[k:]
		if c.fill == chunkRaw {
			c.dispatch()
		}
	}
	return n, nil
}

func (c *Calc) checkWrite(n uint64) error {
	if c.err != nil {
		return c.err
	}
	if c.finished {
		return ErrFinished
	}
	if n > MaxRawSize-c.written {
		c.err = fmt.Errorf("%w: %d bytes written plus %d more exceed %d", ErrTooLarge, c.written, n, MaxRawSize)
		return c.err
	}
	return nil
}

// ReadFrom reads r to EOF straight into the chunk buffers, saving Write's copy.
func (c *Calc) ReadFrom(r io.Reader) (int64, error) {
	if err := c.checkWrite(0); err != nil {
		return 0, err
	}
	var total int64
	for {
		if c.written == MaxRawSize {
			// Anything more is too much; probe for it.
			var probe [1]byte
			n, err := io.ReadFull(r, probe[:])
			if n > 0 {
				return total, c.checkWrite(1)
			}
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		if c.cur == nil {
			c.cur = c.nextJob()
		}
		room := uint64(chunkRaw - c.fill)
		room = min(room, MaxRawSize-c.written)
		n, err := r.Read(c.cur.raw[c.fill : c.fill+int(room)])
		c.fill += n
		c.written += uint64(n)
		total += int64(n)
		if c.fill == chunkRaw {
			c.dispatch()
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// dispatch hands the full current chunk to the workers, starting them if needed.
func (c *Calc) dispatch() {
	if c.workers == nil {
		n := runtime.GOMAXPROCS(0)
		c.maxInflight = 2 * n
		c.workers = startChunkWorkers(n, c.maxInflight, c.chunkRecordHeight())
		// A Calc dropped without Finish or Reset must not leak its workers; they hold no
		// reference to c, so c can be collected and the cleanup stops them.
		runtime.AddCleanup(c, (*chunkWorkers).stop, c.workers)
	}
	c.workers.jobs <- c.cur // never blocks: the capacity is maxInflight
	c.inflight = append(c.inflight, c.cur)
	c.cur, c.fill = nil, 0
}

// nextJob returns an empty chunk, reusing the oldest finished one once enough are in flight.
func (c *Calc) nextJob() *chunkJob {
	if n := len(c.free); n > 0 {
		j := c.free[n-1]
		c.free = c.free[:n-1]
		return j
	}
	if c.workers == nil || len(c.inflight) < c.maxInflight {
		return chunkJobs.Get().(*chunkJob)
	}
	return c.foldOldest()
}

// foldOldest waits for the oldest chunk in flight, folds its results and returns it for reuse.
func (c *Calc) foldOldest() *chunkJob {
	j := c.inflight[0]
	copy(c.inflight, c.inflight[1:])
	c.inflight = c.inflight[:len(c.inflight)-1]
	<-j.done
	c.fold.push(j.root, chunkHeight)
	if c.chunkRecordHeight() >= 0 {
		c.sections = append(c.sections, j.sections...)
	}
	return j
}

// settle folds every chunk in flight.
func (c *Calc) settle() {
	for len(c.inflight) > 0 {
		c.free = append(c.free, c.foldOldest())
	}
}

// root returns the root of everything written so far and the tree height, hashing the
// partial chunk without consuming it. fold receives the partial chunk's root; the tail
// hasher records section roots at tailRecord.
func (c *Calc) root(fold *subtreeStack, tailRecord int) (Node, uint8) {
	h := TreeHeight(c.written)
	var tail []byte
	if c.cur != nil {
		tail = c.cur.raw[:c.fill]
	}
	c.tail.stack.reset(tailRecord, c.tail.stack.record[:0])
	full := len(tail) / blockRaw * blockRaw
	c.tail.writeBlocks(tail[:full])
	if fold.leaves == 0 {
		// Less than one chunk: the tail is the whole piece.
		return c.tail.finish(tail[full:], int(h)), h
	}
	if len(tail) > 0 {
		fold.push(c.tail.finish(tail[full:], chunkHeight), chunkHeight)
	}
	return fold.root(int(h)), h
}

// Sum appends the root of the data written so far to b; the Calc keeps accepting writes. It
// panics if the Calc has failed with ErrTooLarge, since hash.Hash has no way to report it.
func (c *Calc) Sum(b []byte) []byte {
	if c.err != nil {
		panic(c.err)
	}
	if c.finished {
		return append(b, c.result.Piece.Root[:]...)
	}
	c.settle()
	fold := c.fold
	fold.recordHeight, fold.record = -1, nil
	r, _ := c.root(&fold, -1)
	return append(b, r[:]...)
}

// Finish ends the stream and returns the piece CID and, if a layer height was given, the
// TreeTop. It releases the workers. Call it once; later calls return ErrFinished until Reset.
func (c *Calc) Finish() (Commitment, error) {
	if c.err != nil {
		c.release()
		return Commitment{}, c.err
	}
	if c.finished {
		return Commitment{}, ErrFinished
	}
	c.settle()
	h := TreeHeight(c.written)
	layer := min(c.layerHeight, h)
	tailRecord := c.chunkRecordHeight()
	if c.layerHeight == 0 || layer == h {
		tailRecord = -1
	}
	root, _ := c.root(&c.fold, tailRecord)
	c.sections = append(c.sections, c.tail.stack.record...)
	c.result = Commitment{Piece: PieceCID{Root: root, Height: h, Padding: rawCapacity(h) - c.written}}
	if c.layerHeight != 0 {
		sections := c.sections
		if c.foldRecordHeight() >= 0 {
			sections = c.fold.record
		}
		if layer == h {
			sections = []Node{root}
		}
		c.result.Top = buildTreeTop(sections, layer, h)
	}
	c.finished = true
	c.release()
	return c.result, nil
}

// release stops the workers and returns the chunk buffers to the pool.
func (c *Calc) release() {
	if c.workers != nil {
		c.workers.stop()
		c.workers = nil
	}
	for _, j := range c.inflight {
		<-j.done // every dispatched job was answered before the workers exited
		chunkJobs.Put(j)
	}
	for _, j := range c.free {
		chunkJobs.Put(j)
	}
	if c.cur != nil {
		chunkJobs.Put(c.cur)
	}
	c.inflight, c.free, c.cur, c.fill = c.inflight[:0], c.free[:0], nil, 0
}

// Reset abandons any work in flight, releases the workers and makes the Calc ready for a new
// payload with the same layer height.
func (c *Calc) Reset() {
	c.release()
	c.written, c.err, c.finished, c.result = 0, nil, false, Commitment{}
	c.fold.reset(c.foldRecordHeight(), nil)
	c.sections = nil
}

// CommP returns the piece CID of everything r yields.
func CommP(r io.Reader) (PieceCID, error) {
	c := NewCalc(0)
	if _, err := c.ReadFrom(r); err != nil {
		c.Reset()
		return PieceCID{}, fmt.Errorf("pdp: computing commP: %w", err)
	}
	res, err := c.Finish()
	if err != nil {
		return PieceCID{}, err
	}
	return res.Piece, nil
}
