package pdp

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// Multicodec and multihash codes of the two piece CID forms.
const (
	// v2 (FRC-0069): CIDv1, raw codec, multihash fr32-sha256-trunc254-padbintree.
	codecRaw      = 0x55
	mhPieceV2     = 0x1011
	pieceV2Prefix = "bafkzcib"
	// v1: codec fil-commitment-unsealed, multihash sha2-256-trunc254-padded; the digest is the
	// bare root, so v1 does not say how big the piece is.
	codecFilCommitmentUnsealed = 0xf101
	mhPieceV1                  = 0x1012
)

// ErrInvalidPieceCID is wrapped by every error about a malformed or unacceptable piece CID.
var ErrInvalidPieceCID = errors.New("invalid piece CID")

// PieceCID is a piece commitment with its size, the FRC-0069 ("piece CID v2") view of a piece:
// the root of the fr32-padded sha254 tree, the tree height and the number of raw zero bytes
// that were added to fill the tree. It is comparable and usable as a map key.
type PieceCID struct {
	Root    Node
	Height  uint8  // log2 of the padded tree's leaf count (2..MaxHeight)
	Padding uint64 // raw zero bytes added to fill the tree (FRC-0069 "padding")
}

// NewPieceCID describes the piece whose rawSize-byte payload has the given root. Payloads below
// 127 bytes are zero-padded to one 127-byte chunk as FRC-0069 specifies, so rawSize 0 is
// accepted here; note that PDPVerifier, and so ParsePieceCID, rejects a piece without data.
func NewPieceCID(root Node, rawSize uint64) (PieceCID, error) {
	if limit := rawCapacity(MaxHeight); rawSize > limit {
		return PieceCID{}, fmt.Errorf("%w: raw size %d exceeds the largest tree (height %d holds %d bytes)", ErrInvalidPieceCID, rawSize, MaxHeight, limit)
	}
	h := TreeHeight(rawSize)
	return PieceCID{Root: root, Height: h, Padding: rawCapacity(h) - rawSize}, nil
}

// Validate applies PDPVerifier's rules for a piece CID: 2 <= height <= MaxHeight and padding
// not too large, i.e. floor(128·padding/127) < 2^(height+5). The second rule is the same as
// padding < 127·2^(height−2) (the tree's raw capacity), so a valid piece holds at least one
// raw byte; the check is written in that overflow-free form.
func (p PieceCID) Validate() error {
	if err := checkHeight(p.Height); err != nil {
		return err
	}
	if capacity := rawCapacity(p.Height); p.Padding >= capacity {
		return fmt.Errorf("%w: padding too large: %d bytes of padding in a height-%d tree that holds %d raw bytes leaves no data", ErrInvalidPieceCID, p.Padding, p.Height, capacity)
	}
	return nil
}

// Canonical reports whether p is the CID a payload of p.RawSize() bytes actually hashes to: its
// height is the smallest tree that holds the payload (padding < half the tree, the rule
// go-fil-commcid enforces). PDPVerifier does not require this, so Validate does not either;
// anything that recomputes a piece's commitment from data only ever produces canonical CIDs.
func (p PieceCID) Canonical() bool {
	return p.Validate() == nil && TreeHeight(p.RawSize()) == p.Height
}

func checkHeight(h uint8) error {
	if h > MaxHeight {
		return fmt.Errorf("%w: height %d exceeds the maximum %d", ErrInvalidPieceCID, h, MaxHeight)
	}
	if h < 2 {
		return fmt.Errorf("%w: height %d below the minimum 2 (one 128-byte fr32 chunk)", ErrInvalidPieceCID, h)
	}
	return nil
}

// RawSize is the payload size in bytes: 127·2^(height−2) − padding.
func (p PieceCID) RawSize() uint64 { return rawCapacity(p.Height) - p.Padding }

// PaddedSize is the size of the padded tree in bytes: 32·2^height.
func (p PieceCID) PaddedSize() uint64 { return uint64(NodeSize) << p.Height }

// LeafCount is the number of leaves that hold data, the count PDPVerifier uses for challenges:
// 2^height − floor(floor(128·padding/127)/32). Leaves of pure padding are never challenged.
func (p PieceCID) LeafCount() uint64 {
	// 128·padding fits in 64 bits for every valid piece (padding < 127·2^48).
	return uint64(1)<<p.Height - p.Padding*128/127/NodeSize
}

// digestV2 appends the FRC-0069 digest: uvarint(padding) ‖ height ‖ root.
func (p PieceCID) digestV2(dst []byte) []byte {
	var v [varint.MaxLenUvarint63 + 1]byte
	n := varint.PutUvarint(v[:], p.Padding)
	dst = append(dst, v[:n]...)
	dst = append(dst, p.Height)
	return append(dst, p.Root[:]...)
}

// CID returns the v2 piece CID (CIDv1, raw codec, multihash 0x1011).
func (p PieceCID) CID() cid.Cid {
	mh, _ := multihash.Encode(p.digestV2(make([]byte, 0, 64)), mhPieceV2) // error is always nil
	return cid.NewCidV1(codecRaw, mh)
}

// String returns the v2 piece CID in its canonical base32 form (bafkzcib…).
func (p PieceCID) String() string { return p.CID().String() }

// V1 returns the legacy piece CID (baga6ea4sea…), which carries the root only.
func (p PieceCID) V1() cid.Cid { return pieceCIDV1(p.Root) }

func pieceCIDV1(root Node) cid.Cid {
	mh, _ := multihash.Encode(root[:], mhPieceV1) // error is always nil
	return cid.NewCidV1(codecFilCommitmentUnsealed, mh)
}

// MarshalText returns the v2 string, so a PieceCID is a JSON string. It fails for a PieceCID
// whose height is out of range (e.g. the zero value), never silently producing a bad CID.
func (p PieceCID) MarshalText() ([]byte, error) {
	if err := checkHeight(p.Height); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a v2 string with ParsePieceCID.
func (p *PieceCID) UnmarshalText(b []byte) error {
	v, err := ParsePieceCID(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePieceCID parses a v2 piece CID (bafkzcib…, any multibase) and applies PDPVerifier's
// validation. A v1 piece CID is refused because it does not carry the piece size; use
// ParsePieceRef where v1 is acceptable. Errors wrap ErrInvalidPieceCID and say what is wrong.
func ParsePieceCID(s string) (PieceCID, error) {
	c, err := decodeCID(s)
	if err != nil {
		return PieceCID{}, err
	}
	return PieceCIDFromCID(c)
}

func decodeCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: empty string", ErrInvalidPieceCID)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q is not a CID: %v", ErrInvalidPieceCID, clip(s), err)
	}
	return c, nil
}

// clip shortens user input quoted in an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// PieceCIDFromCID validates a decoded v2 piece CID and returns its fields.
func PieceCIDFromCID(c cid.Cid) (PieceCID, error) {
	if !c.Defined() {
		return PieceCID{}, fmt.Errorf("%w: undefined CID", ErrInvalidPieceCID)
	}
	pre := c.Prefix()
	if pre.Codec == codecFilCommitmentUnsealed && pre.MhType == mhPieceV1 {
		return PieceCID{}, fmt.Errorf("%w: %s is a v1 piece CID (baga…), which does not carry the piece size; a v2 piece CID (%s…) is required", ErrInvalidPieceCID, c, pieceV2Prefix)
	}
	if pre.Version != 1 {
		return PieceCID{}, fmt.Errorf("%w: CID version %d, want 1", ErrInvalidPieceCID, pre.Version)
	}
	if pre.Codec != codecRaw {
		return PieceCID{}, fmt.Errorf("%w: codec 0x%x, want raw (0x55)", ErrInvalidPieceCID, pre.Codec)
	}
	if pre.MhType != mhPieceV2 {
		return PieceCID{}, fmt.Errorf("%w: multihash 0x%x, want fr32-sha256-trunc254-padbintree (0x1011)", ErrInvalidPieceCID, pre.MhType)
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil {
		return PieceCID{}, fmt.Errorf("%w: bad multihash: %v", ErrInvalidPieceCID, err)
	}
	return parseDigestV2(dec.Digest)
}

// parseDigestV2 decodes uvarint(padding) ‖ height ‖ root and validates it.
func parseDigestV2(d []byte) (PieceCID, error) {
	padding, n, err := varint.FromUvarint(d)
	if err != nil {
		return PieceCID{}, fmt.Errorf("%w: digest padding varint: %v", ErrInvalidPieceCID, err)
	}
	if want := n + 1 + NodeSize; len(d) != want {
		return PieceCID{}, fmt.Errorf("%w: digest is %d bytes, want %d (padding varint %d + height 1 + root 32)", ErrInvalidPieceCID, len(d), want, n)
	}
	p := PieceCID{Height: d[n], Padding: padding}
	copy(p.Root[:], d[n+1:])
	if p.isEmptyPiece() {
		// FRC-0069 defines the CID of a 0-byte payload, and `client commp` prints it for an
		// empty file, so it must parse back. PDPVerifier still refuses to add it (a piece
		// without data has nothing to prove): Validate reports that where pieces are added.
		return p, nil
	}
	if err := p.Validate(); err != nil {
		return PieceCID{}, err
	}
	return p, nil
}

// isEmptyPiece reports whether p is FRC-0069's 0-byte piece: height 2, all 127 bytes padding.
func (p PieceCID) isEmptyPiece() bool { return p.Height == 2 && p.Padding == rawCapacity(2) }

// PieceRef is what a URL or a request may name a piece by: a v2 CID (root and size) or a v1
// CID (root only). Sized says which; Piece is set only when Sized.
type PieceRef struct {
	Root  Node
	Piece PieceCID
	Sized bool
}

// String returns the v2 string when the size is known, else the v1 string.
func (r PieceRef) String() string {
	if r.Sized {
		return r.Piece.String()
	}
	return pieceCIDV1(r.Root).String()
}

// ParsePieceRef accepts a v2 piece CID (bafkzcib…) or a v1 one (baga6ea4sea…). Errors wrap
// ErrInvalidPieceCID.
func ParsePieceRef(s string) (PieceRef, error) {
	c, err := decodeCID(s)
	if err != nil {
		return PieceRef{}, err
	}
	pre := c.Prefix()
	if pre.Version == 1 && pre.Codec == codecFilCommitmentUnsealed {
		if pre.MhType != mhPieceV1 {
			return PieceRef{}, fmt.Errorf("%w: v1 piece CID with multihash 0x%x, want sha2-256-trunc254-padded (0x1012)", ErrInvalidPieceCID, pre.MhType)
		}
		dec, err := multihash.Decode(c.Hash())
		if err != nil {
			return PieceRef{}, fmt.Errorf("%w: bad multihash: %v", ErrInvalidPieceCID, err)
		}
		if len(dec.Digest) != NodeSize {
			return PieceRef{}, fmt.Errorf("%w: v1 digest is %d bytes, want 32", ErrInvalidPieceCID, len(dec.Digest))
		}
		var r PieceRef
		copy(r.Root[:], dec.Digest)
		return r, nil
	}
	p, err := PieceCIDFromCID(c)
	if err != nil {
		return PieceRef{}, err
	}
	return PieceRef{Root: p.Root, Piece: p, Sized: true}, nil
}
