package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/warmstore/warmstore/pdp"
	"github.com/warmstore/warmstore/storage/blob"
)

// A sidecar is pdp.TreeTop.MarshalBinary() followed by an 8-byte trailer: the magic "WSL1" and
// the CRC-32C of everything before the CRC. Node offsets from pdp.TreeTopNodeOffset therefore
// apply to the sidecar unchanged, which lets a proof read single nodes with ReadAt.
const (
	sidecarMagic   = "WSL1"
	sidecarTrailer = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodedSidecar is a sidecar as two parts, so that the (possibly tens of MiB) marshalled
// tree is written as is rather than copied to grow it by the trailer.
type encodedSidecar struct {
	body    []byte
	trailer [sidecarTrailer]byte
}

func (e *encodedSidecar) size() int64 { return int64(len(e.body)) + sidecarTrailer }

func encodeSidecar(top *pdp.TreeTop) (*encodedSidecar, error) {
	b, err := top.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode sidecar: %w", err)
	}
	e := &encodedSidecar{body: b}
	copy(e.trailer[:4], sidecarMagic)
	crc := crc32.Update(crc32.Checksum(b, castagnoli), castagnoli, e.trailer[:4])
	binary.BigEndian.PutUint32(e.trailer[4:], crc)
	return e, nil
}

// verifySidecar streams the whole sidecar through CRC-32C and checks the trailer. It reads in
// bounded chunks: a 64 GiB piece's sidecar is tens of MiB.
func verifySidecar(r blob.Reader) error {
	size := r.Size()
	if size < sidecarTrailer {
		return fmt.Errorf("sidecar of %d bytes: %w", size, ErrCorrupt)
	}
	var trailer [sidecarTrailer]byte
	if _, err := r.ReadAt(trailer[:], size-sidecarTrailer); err != nil {
		return fmt.Errorf("read sidecar trailer: %w", classify(err))
	}
	if string(trailer[:4]) != sidecarMagic {
		return fmt.Errorf("sidecar trailer magic: %w", ErrCorrupt)
	}
	body := size - 4 // the CRC covers everything before itself, magic included
	buf := make([]byte, 256<<10)
	var crc uint32
	for off := int64(0); off < body; {
		n := min(int64(len(buf)), body-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return fmt.Errorf("read sidecar: %w", classify(err))
		}
		crc = crc32.Update(crc, castagnoli, buf[:n])
		off += n
	}
	if binary.BigEndian.Uint32(trailer[4:]) != crc {
		return fmt.Errorf("sidecar checksum: %w", ErrCorrupt)
	}
	return nil
}

// sidecarNodes is a pdp.TopNodes that reads single nodes from a sidecar blob, so that a proof
// costs ~20 small reads instead of loading the layer.
type sidecarNodes struct {
	r           blob.Reader
	piece       pdp.PieceCID
	layerHeight uint8
	sections    uint64
	bytesRead   uint64
}

func (n *sidecarNodes) TopNode(height uint8, index uint64) (pdp.Node, error) {
	var node pdp.Node
	ph := n.piece.Height
	if height < n.layerHeight || height > ph {
		return node, fmt.Errorf("sidecar node at height %d outside %d..%d: %w", height, n.layerHeight, ph, ErrInvalid)
	}
	if index >= uint64(1)<<(ph-height) {
		return node, fmt.Errorf("sidecar node %d at height %d outside the tree: %w", index, height, ErrInvalid)
	}
	off, ok := pdp.TreeTopNodeOffset(ph, n.layerHeight, n.sections, height, index)
	if !ok {
		return pdp.ZeroRoot(int(height)), nil
	}
	if off < 0 || off+pdp.NodeSize > n.r.Size()-sidecarTrailer {
		return node, fmt.Errorf("sidecar node offset %d beyond its %d bytes: %w", off, n.r.Size(), ErrCorrupt)
	}
	if _, err := n.r.ReadAt(node[:], off); err != nil && !errors.Is(err, io.EOF) {
		return node, fmt.Errorf("read sidecar node: %w", classify(err))
	}
	n.bytesRead += pdp.NodeSize
	return node, nil
}
