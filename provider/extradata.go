package provider

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain/eip712"
)

// ErrExtraData is wrapped by every extraData decoding error.
var ErrExtraData = errors.New("provider: malformed extraData")

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
			panic(fmt.Sprintf("provider: ABI type %q: %v", t, err))
		}
		args[i] = abi.Argument{Type: ty}
	}
	return args
}

// Size caps on extraData, as the warm-storage service enforces them (create ≤ 4096 B, removals
// and terminate ≤ 256 B); adds carry per-piece metadata, so they get more room.
const (
	MaxCreateExtraData    = 4096
	MaxAddExtraData       = 1 << 16
	MaxSignatureExtraData = 256
)

// CreateDataSetExtra is the decoded extraData of a data-set creation.
type CreateDataSetExtra struct {
	Payer           common.Address
	ClientDataSetID *big.Int
	Metadata        []eip712.MetadataEntry
	Signature       []byte
}

// AddPiecesExtra is the decoded extraData of a piece addition. PieceMetadata[i] belongs to the
// i-th piece of the request.
type AddPiecesExtra struct {
	Nonce         *big.Int
	PieceMetadata [][]eip712.MetadataEntry
	Signature     []byte
}

func unpack(args abi.Arguments, b []byte, what string, limit int) ([]any, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %s extraData is %d bytes, max %d", ErrExtraData, what, len(b), limit)
	}
	vals, err := args.Unpack(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrExtraData, what, err)
	}
	if len(vals) != len(args) {
		return nil, fmt.Errorf("%w: %s: %d values, want %d", ErrExtraData, what, len(vals), len(args))
	}
	return vals, nil
}

func zipMetadata(keys, values []string, what string) ([]eip712.MetadataEntry, error) {
	if len(keys) != len(values) {
		return nil, fmt.Errorf("%w: %s: %d metadata keys but %d values", ErrExtraData, what, len(keys), len(values))
	}
	out := make([]eip712.MetadataEntry, len(keys))
	for i := range keys {
		out[i] = eip712.MetadataEntry{Key: keys[i], Value: values[i]}
	}
	return out, nil
}

// DecodeCreateDataSetExtra decodes create extraData.
func DecodeCreateDataSetExtra(b []byte) (CreateDataSetExtra, error) {
	vals, err := unpack(createArgs, b, "create", MaxCreateExtraData)
	if err != nil {
		return CreateDataSetExtra{}, err
	}
	payer, ok1 := vals[0].(common.Address)
	id, ok2 := vals[1].(*big.Int)
	keys, ok3 := vals[2].([]string)
	values, ok4 := vals[3].([]string)
	sig, ok5 := vals[4].([]byte)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return CreateDataSetExtra{}, fmt.Errorf("%w: create: unexpected decoded types", ErrExtraData)
	}
	meta, err := zipMetadata(keys, values, "create")
	if err != nil {
		return CreateDataSetExtra{}, err
	}
	return CreateDataSetExtra{Payer: payer, ClientDataSetID: id, Metadata: meta, Signature: sig}, nil
}

// DecodeAddPiecesExtra decodes addPieces extraData.
func DecodeAddPiecesExtra(b []byte) (AddPiecesExtra, error) {
	vals, err := unpack(addArgs, b, "addPieces", MaxAddExtraData)
	if err != nil {
		return AddPiecesExtra{}, err
	}
	nonce, ok1 := vals[0].(*big.Int)
	keys, ok2 := vals[1].([][]string)
	values, ok3 := vals[2].([][]string)
	sig, ok4 := vals[3].([]byte)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return AddPiecesExtra{}, fmt.Errorf("%w: addPieces: unexpected decoded types", ErrExtraData)
	}
	if len(keys) != len(values) {
		return AddPiecesExtra{}, fmt.Errorf("%w: addPieces: metadata for %d pieces but values for %d", ErrExtraData, len(keys), len(values))
	}
	meta := make([][]eip712.MetadataEntry, len(keys))
	for i := range keys {
		if meta[i], err = zipMetadata(keys[i], values[i], fmt.Sprintf("addPieces piece %d", i)); err != nil {
			return AddPiecesExtra{}, err
		}
	}
	return AddPiecesExtra{Nonce: nonce, PieceMetadata: meta, Signature: sig}, nil
}

// DecodeCreateAndAddExtra decodes the extraData of create-and-add: the create payload and the
// add payload, each in its own layout.
func DecodeCreateAndAddExtra(b []byte) (CreateDataSetExtra, AddPiecesExtra, error) {
	vals, err := unpack(createAndAddArgs, b, "create-and-add", MaxCreateExtraData+MaxAddExtraData+256)
	if err != nil {
		return CreateDataSetExtra{}, AddPiecesExtra{}, err
	}
	cb, ok1 := vals[0].([]byte)
	ab, ok2 := vals[1].([]byte)
	if !ok1 || !ok2 {
		return CreateDataSetExtra{}, AddPiecesExtra{}, fmt.Errorf("%w: create-and-add: unexpected decoded types", ErrExtraData)
	}
	c, err := DecodeCreateDataSetExtra(cb)
	if err != nil {
		return CreateDataSetExtra{}, AddPiecesExtra{}, err
	}
	a, err := DecodeAddPiecesExtra(ab)
	if err != nil {
		return CreateDataSetExtra{}, AddPiecesExtra{}, err
	}
	return c, a, nil
}

// DecodeSignatureExtra decodes the extraData of piece removals and of termination: the payer's
// signature alone.
func DecodeSignatureExtra(b []byte) ([]byte, error) {
	vals, err := unpack(signatureArgs, b, "signature", MaxSignatureExtraData)
	if err != nil {
		return nil, err
	}
	sig, ok := vals[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("%w: signature: unexpected decoded type", ErrExtraData)
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

// EncodeCreateDataSetExtra is the inverse of DecodeCreateDataSetExtra (what a client sends).
func EncodeCreateDataSetExtra(c CreateDataSetExtra) ([]byte, error) {
	keys, values := splitMetadata(c.Metadata)
	b, err := createArgs.Pack(c.Payer, orZero(c.ClientDataSetID), keys, values, nonNil(c.Signature))
	if err != nil {
		return nil, fmt.Errorf("provider: encode create extraData: %w", err)
	}
	return b, nil
}

// EncodeAddPiecesExtra is the inverse of DecodeAddPiecesExtra.
func EncodeAddPiecesExtra(a AddPiecesExtra) ([]byte, error) {
	keys, values := make([][]string, len(a.PieceMetadata)), make([][]string, len(a.PieceMetadata))
	for i, m := range a.PieceMetadata {
		keys[i], values[i] = splitMetadata(m)
	}
	b, err := addArgs.Pack(orZero(a.Nonce), keys, values, nonNil(a.Signature))
	if err != nil {
		return nil, fmt.Errorf("provider: encode addPieces extraData: %w", err)
	}
	return b, nil
}

// EncodeCreateAndAddExtra is the inverse of DecodeCreateAndAddExtra.
func EncodeCreateAndAddExtra(c CreateDataSetExtra, a AddPiecesExtra) ([]byte, error) {
	cb, err := EncodeCreateDataSetExtra(c)
	if err != nil {
		return nil, err
	}
	ab, err := EncodeAddPiecesExtra(a)
	if err != nil {
		return nil, err
	}
	b, err := createAndAddArgs.Pack(cb, ab)
	if err != nil {
		return nil, fmt.Errorf("provider: encode create-and-add extraData: %w", err)
	}
	return b, nil
}

// EncodeSignatureExtra is the inverse of DecodeSignatureExtra.
func EncodeSignatureExtra(sig []byte) ([]byte, error) {
	b, err := signatureArgs.Pack(nonNil(sig))
	if err != nil {
		return nil, fmt.Errorf("provider: encode signature extraData: %w", err)
	}
	return b, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
