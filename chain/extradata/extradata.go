// Package extradata encodes and decodes the extraData that FilecoinWarmStorageService reads
// from data-set operations: the payer's EIP-712 signature (package eip712) wrapped in the ABI
// layouts the Synapse SDK produces. Clients encode it (sdk), providers decode it, check it and
// carry it to the chain (provider). Decoding bounds what a payload may expand to, so a small
// hostile input cannot make the decoder allocate gigabytes.
package extradata

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain/eip712"
)

// ErrMalformed is wrapped by every extraData decoding error.
var ErrMalformed = errors.New("extradata: malformed extraData")

// The extraData layouts the warm-storage service decodes (reference §1.1), which the Synapse
// SDK produces with viem's encodeAbiParameters:
//
//	create:         abi.encode(address payer, uint256 clientDataSetId, string[] keys, string[] values, bytes sig)
//	addPieces:      abi.encode(uint256 nonce, string[][] keys, string[][] values, bytes sig)
//	create-and-add: abi.encode(bytes createPayload, bytes addPayload)
//	removals, terminate: abi.encode(bytes sig)
var (
	createArgs       = mustArgs("address", "uint256", "string[]", "string[]", "bytes")
	addArgs          = mustArgs("uint256", "string[][]", "string[][]", "bytes")
	createAndAddArgs = mustArgs("bytes", "bytes")
	signatureArgs    = mustArgs("bytes")
)

func mustArgs(types ...string) abi.Arguments {
	args := make(abi.Arguments, len(types))
	for i, t := range types {
		ty, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(fmt.Sprintf("extradata: ABI type %q: %v", t, err))
		}
		args[i] = abi.Argument{Type: ty}
	}
	return args
}

// Size caps on extraData, as the warm-storage service enforces them (create ≤ 4096 B, removals
// and terminate ≤ 256 B); adds carry per-piece metadata, so they get more room.
const (
	MaxCreateSize    = 4096
	MaxAddSize       = 1 << 16
	MaxSignatureSize = 256
)

// CreateDataSet is the decoded extraData of a data-set creation.
type CreateDataSet struct {
	Payer           common.Address
	ClientDataSetID *big.Int
	Metadata        []eip712.MetadataEntry
	Signature       []byte
}

// AddPieces is the decoded extraData of a piece addition. PieceMetadata[i] belongs to the
// i-th piece of the request.
type AddPieces struct {
	Nonce         *big.Int
	PieceMetadata [][]eip712.MetadataEntry
	Signature     []byte
}

func unpack(args abi.Arguments, b []byte, what string, limit int) ([]any, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %s extraData is %d bytes, max %d", ErrMalformed, what, len(b), limit)
	}
	if err := checkDecodedSize(args, b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	vals, err := args.Unpack(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if len(vals) != len(args) {
		return nil, fmt.Errorf("%w: %s: %d values, want %d", ErrMalformed, what, len(vals), len(args))
	}
	return vals, nil
}

func zipMetadata(keys, values []string, what string) ([]eip712.MetadataEntry, error) {
	if len(keys) != len(values) {
		return nil, fmt.Errorf("%w: %s: %d metadata keys but %d values", ErrMalformed, what, len(keys), len(values))
	}
	out := make([]eip712.MetadataEntry, len(keys))
	for i := range keys {
		out[i] = eip712.MetadataEntry{Key: keys[i], Value: values[i]}
	}
	return out, nil
}

// DecodeCreateDataSet decodes create extraData.
func DecodeCreateDataSet(b []byte) (CreateDataSet, error) {
	vals, err := unpack(createArgs, b, "create", MaxCreateSize)
	if err != nil {
		return CreateDataSet{}, err
	}
	payer, ok1 := vals[0].(common.Address)
	id, ok2 := vals[1].(*big.Int)
	keys, ok3 := vals[2].([]string)
	values, ok4 := vals[3].([]string)
	sig, ok5 := vals[4].([]byte)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return CreateDataSet{}, fmt.Errorf("%w: create: unexpected decoded types", ErrMalformed)
	}
	meta, err := zipMetadata(keys, values, "create")
	if err != nil {
		return CreateDataSet{}, err
	}
	return CreateDataSet{Payer: payer, ClientDataSetID: id, Metadata: meta, Signature: sig}, nil
}

// DecodeAddPieces decodes addPieces extraData.
func DecodeAddPieces(b []byte) (AddPieces, error) {
	vals, err := unpack(addArgs, b, "addPieces", MaxAddSize)
	if err != nil {
		return AddPieces{}, err
	}
	nonce, ok1 := vals[0].(*big.Int)
	keys, ok2 := vals[1].([][]string)
	values, ok3 := vals[2].([][]string)
	sig, ok4 := vals[3].([]byte)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return AddPieces{}, fmt.Errorf("%w: addPieces: unexpected decoded types", ErrMalformed)
	}
	if len(keys) != len(values) {
		return AddPieces{}, fmt.Errorf("%w: addPieces: metadata for %d pieces but values for %d", ErrMalformed, len(keys), len(values))
	}
	meta := make([][]eip712.MetadataEntry, len(keys))
	for i := range keys {
		if meta[i], err = zipMetadata(keys[i], values[i], fmt.Sprintf("addPieces piece %d", i)); err != nil {
			return AddPieces{}, err
		}
	}
	return AddPieces{Nonce: nonce, PieceMetadata: meta, Signature: sig}, nil
}

// DecodeCreateAndAdd decodes the extraData of create-and-add: the create payload and the
// add payload, each in its own layout.
func DecodeCreateAndAdd(b []byte) (CreateDataSet, AddPieces, error) {
	vals, err := unpack(createAndAddArgs, b, "create-and-add", MaxCreateSize+MaxAddSize+256)
	if err != nil {
		return CreateDataSet{}, AddPieces{}, err
	}
	cb, ok1 := vals[0].([]byte)
	ab, ok2 := vals[1].([]byte)
	if !ok1 || !ok2 {
		return CreateDataSet{}, AddPieces{}, fmt.Errorf("%w: create-and-add: unexpected decoded types", ErrMalformed)
	}
	c, err := DecodeCreateDataSet(cb)
	if err != nil {
		return CreateDataSet{}, AddPieces{}, err
	}
	a, err := DecodeAddPieces(ab)
	if err != nil {
		return CreateDataSet{}, AddPieces{}, err
	}
	return c, a, nil
}

// DecodeSignature decodes the extraData of piece removals and of termination: the payer's
// signature alone.
func DecodeSignature(b []byte) ([]byte, error) {
	vals, err := unpack(signatureArgs, b, "signature", MaxSignatureSize)
	if err != nil {
		return nil, err
	}
	sig, ok := vals[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("%w: signature: unexpected decoded type", ErrMalformed)
	}
	return sig, nil
}

func splitMetadata(m []eip712.MetadataEntry) (keys, values []string) {
	keys, values = make([]string, len(m)), make([]string, len(m))
	for i, e := range m {
		keys[i], values[i] = e.Key, e.Value
	}
	return keys, values
}

func orZero(b *big.Int) *big.Int {
	if b == nil {
		return new(big.Int)
	}
	return b
}

// EncodeCreateDataSet is the inverse of DecodeCreateDataSet (what a client sends).
func EncodeCreateDataSet(c CreateDataSet) ([]byte, error) {
	keys, values := splitMetadata(c.Metadata)
	b, err := createArgs.Pack(c.Payer, orZero(c.ClientDataSetID), keys, values, nonNil(c.Signature))
	if err != nil {
		return nil, fmt.Errorf("extradata: encode create extraData: %w", err)
	}
	return b, nil
}

// EncodeAddPieces is the inverse of DecodeAddPieces.
func EncodeAddPieces(a AddPieces) ([]byte, error) {
	keys, values := make([][]string, len(a.PieceMetadata)), make([][]string, len(a.PieceMetadata))
	for i, m := range a.PieceMetadata {
		keys[i], values[i] = splitMetadata(m)
	}
	b, err := addArgs.Pack(orZero(a.Nonce), keys, values, nonNil(a.Signature))
	if err != nil {
		return nil, fmt.Errorf("extradata: encode addPieces extraData: %w", err)
	}
	return b, nil
}

// EncodeCreateAndAdd is the inverse of DecodeCreateAndAdd.
func EncodeCreateAndAdd(c CreateDataSet, a AddPieces) ([]byte, error) {
	cb, err := EncodeCreateDataSet(c)
	if err != nil {
		return nil, err
	}
	ab, err := EncodeAddPieces(a)
	if err != nil {
		return nil, err
	}
	b, err := createAndAddArgs.Pack(cb, ab)
	if err != nil {
		return nil, fmt.Errorf("extradata: encode create-and-add extraData: %w", err)
	}
	return b, nil
}

// EncodeSignature is the inverse of DecodeSignature.
func EncodeSignature(sig []byte) ([]byte, error) {
	b, err := signatureArgs.Pack(nonNil(sig))
	if err != nil {
		return nil, fmt.Errorf("extradata: encode signature extraData: %w", err)
	}
	return b, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// checkDecodedSize walks the heads of b before the ABI decoder materializes it. ABI offsets
// may point anywhere, so a hostile payload can make many array elements share one string and
// decode a few kilobytes into gigabytes. A canonical encoding gives every element its own head
// word and every string its own data, so the decoded strings and bytes can never total more
// than the input; anything that does is refused.
func checkDecodedSize(args abi.Arguments, b []byte) error {
	w := sizeWalker{buf: b, budget: len(b)}
	for i, a := range args {
		head := uint64(32 * i)
		switch a.Type.String() {
		case "address", "uint256":
			if uint64(len(b)) < head+32 {
				return fmt.Errorf("argument %d is past the end (%d bytes)", i, len(b))
			}
		case "bytes", "string":
			off, err := w.word(head)
			if err != nil {
				return err
			}
			if err := w.bytesAt(0, off); err != nil {
				return err
			}
		case "string[]":
			off, err := w.word(head)
			if err != nil {
				return err
			}
			if err := w.stringArrayAt(0, off); err != nil {
				return err
			}
		case "string[][]":
			off, err := w.word(head)
			if err != nil {
				return err
			}
			if err := w.nestedStringArrayAt(0, off); err != nil {
				return err
			}
		default:
			return fmt.Errorf("no size check for ABI type %s", a.Type)
		}
	}
	return nil
}

// sizeWalker charges every decoded byte and element against budget.
type sizeWalker struct {
	buf    []byte
	budget int
}

func (w *sizeWalker) charge(n uint64) error {
	if n > uint64(w.budget) {
		return errors.New("decoded size exceeds the payload (aliased offsets)")
	}
	w.budget -= int(n)
	return nil
}

// word reads the 32-byte word at pos as a uint64 (larger values are refused: every length and
// offset here is far below 2^64).
func (w *sizeWalker) word(pos uint64) (uint64, error) {
	if pos > uint64(len(w.buf)) || uint64(len(w.buf))-pos < 32 {
		return 0, fmt.Errorf("word at %d is past the end (%d bytes)", pos, len(w.buf))
	}
	for _, c := range w.buf[pos : pos+24] {
		if c != 0 {
			return 0, fmt.Errorf("word at %d does not fit 64 bits", pos)
		}
	}
	var v uint64
	for _, c := range w.buf[pos+24 : pos+32] {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (w *sizeWalker) bytesAt(base, off uint64) error {
	if off > uint64(len(w.buf)) {
		return fmt.Errorf("offset %d is past the end", off)
	}
	n, err := w.word(base + off)
	if err != nil {
		return err
	}
	return w.charge(n)
}

func (w *sizeWalker) arrayAt(base, off uint64) (start, n uint64, err error) {
	if off > uint64(len(w.buf)) {
		return 0, 0, fmt.Errorf("offset %d is past the end", off)
	}
	p := base + off
	if n, err = w.word(p); err != nil {
		return 0, 0, err
	}
	// One head word per element, charged like data.
	if n > uint64(len(w.buf))/32 {
		return 0, 0, fmt.Errorf("array of %d elements in %d bytes", n, len(w.buf))
	}
	return p + 32, n, w.charge(32 * n)
}

func (w *sizeWalker) stringArrayAt(base, off uint64) error {
	return w.eachElement(base, off, w.bytesAt)
}

func (w *sizeWalker) nestedStringArrayAt(base, off uint64) error {
	return w.eachElement(base, off, w.stringArrayAt)
}

// eachElement walks the dynamic array at off (relative to base) and checks every element with
// elem, whose offset word is relative to the start of the array's element heads.
func (w *sizeWalker) eachElement(base, off uint64, elem func(base, off uint64) error) error {
	start, n, err := w.arrayAt(base, off)
	if err != nil {
		return err
	}
	for i := range n {
		eo, err := w.word(start + 32*i)
		if err != nil {
			return err
		}
		if err := elem(start, eo); err != nil {
			return err
		}
	}
	return nil
}
