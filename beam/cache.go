package beam

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// pieceCache is a size-bounded disk cache of verified pieces, least recently used out first.
// Files are named by their v2 piece CID under dir/pieces; recency is kept in memory and in the
// files' modification times, so a restart rebuilds the same order from the directory. Only
// complete, verified pieces are renamed into place, so whatever is found there is servable.
type pieceCache struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	order *list.List // front = most recently used; values are *cacheEntry
	byCID map[pdp.PieceCID]*list.Element
	size  int64
}

type cacheEntry struct {
	piece   pdp.PieceCID
	size    int64
	touched time.Time // last modification time written, to write it at most once a minute
}

func openPieceCache(dir string, maxBytes int64) (*pieceCache, error) {
	c := &pieceCache{dir: dir, maxBytes: maxBytes, order: list.New(), byCID: map[pdp.PieceCID]*list.Element{}}
	for _, d := range []string{c.piecesDir(), c.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("beam: cache directory: %w", err)
		}
	}
	// Leftovers of fills interrupted by a crash were never verified: drop them.
	if tmps, err := os.ReadDir(c.tmpDir()); err == nil {
		for _, t := range tmps {
			_ = os.Remove(filepath.Join(c.tmpDir(), t.Name()))
		}
	}
	ents, err := os.ReadDir(c.piecesDir())
	if err != nil {
		return nil, fmt.Errorf("beam: read cache: %w", err)
	}
	type found struct {
		e   cacheEntry
		mod time.Time
	}
	var all []found
	for _, d := range ents {
		p, err := pdp.ParsePieceCID(d.Name())
		if err != nil || p.String() != d.Name() {
			continue // not ours
		}
		fi, err := d.Info()
		if err != nil || !fi.Mode().IsRegular() || uint64(fi.Size()) != p.RawSize() {
			// A file of the wrong length cannot be the piece it is named after.
			_ = os.Remove(filepath.Join(c.piecesDir(), d.Name()))
			continue
		}
		all = append(all, found{cacheEntry{piece: p, size: fi.Size()}, fi.ModTime()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.After(all[j].mod) })
	for _, f := range all {
		c.byCID[f.e.piece] = c.order.PushBack(&cacheEntry{piece: f.e.piece, size: f.e.size, touched: f.mod})
		c.size += f.e.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func (c *pieceCache) piecesDir() string { return filepath.Join(c.dir, "pieces") }
func (c *pieceCache) tmpDir() string    { return filepath.Join(c.dir, "tmp") }
func (c *pieceCache) path(p pdp.PieceCID) string {
	return filepath.Join(c.piecesDir(), p.String())
}

// open returns the cached piece, marking it most recently used, or ok=false.
func (c *pieceCache) open(p pdp.PieceCID) (f *os.File, ok bool) {
	now := time.Now()
	c.mu.Lock()
	el, hit := c.byCID[p]
	touch := false
	if hit {
		c.order.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		if now.Sub(e.touched) > time.Minute {
			e.touched, touch = now, true
		}
	}
	c.mu.Unlock()
	if !hit {
		return nil, false
	}
	f, err := os.Open(c.path(p))
	if err != nil {
		c.drop(p)
		return nil, false
	}
	if touch {
		_ = os.Chtimes(c.path(p), now, now) // recency survives a restart (to the minute)
	}
	return f, true
}

func (c *pieceCache) has(p pdp.PieceCID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byCID[p]
	return ok
}

func (c *pieceCache) drop(p pdp.PieceCID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byCID[p]; ok {
		c.size -= el.Value.(*cacheEntry).size
		c.order.Remove(el)
		delete(c.byCID, p)
	}
}

// createTemp returns a fresh file for a fill in progress.
func (c *pieceCache) createTemp() (*os.File, error) {
	f, err := os.CreateTemp(c.tmpDir(), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("beam: cache fill: %w", err)
	}
	return f, nil
}

// errTooLarge refuses a piece bigger than the whole cache.
var errTooLarge = errors.New("beam: piece larger than the cache")

// commit makes a verified temporary file the cached copy of p: fsync, rename into place,
// fsync the directory, then evict the least recently used pieces over the bound. It closes f.
func (c *pieceCache) commit(f *os.File, p pdp.PieceCID) error {
	name := f.Name()
	defer os.Remove(name) // no-op after a successful rename
	size := int64(p.RawSize())
	if size > c.maxBytes {
		f.Close()
		return errTooLarge
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("beam: cache sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("beam: cache close: %w", err)
	}
	if err := os.Rename(name, c.path(p)); err != nil {
		return fmt.Errorf("beam: cache rename: %w", err)
	}
	if d, err := os.Open(c.piecesDir()); err == nil {
		_ = d.Sync()
		d.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byCID[p]; ok { // filled twice concurrently: same bytes, one entry
		c.order.MoveToFront(el)
		return nil
	}
	c.byCID[p] = c.order.PushFront(&cacheEntry{piece: p, size: size, touched: time.Now()})
	c.size += size
	c.evictLocked()
	return nil
}

func (c *pieceCache) evictLocked() {
	for c.size > c.maxBytes && c.order.Len() > 0 {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.byCID, e.piece)
		c.size -= e.size
		// An open reader keeps its bytes until it closes (unlink semantics).
		_ = os.Remove(c.path(e.piece))
	}
}

// usage returns the bytes and pieces cached.
func (c *pieceCache) usage() (bytes int64, pieces int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size, c.order.Len()
}
