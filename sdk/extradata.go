package sdk

import (
	"fmt"
	"math/big"

	ethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/warmstore/warmstore/chain/eip712"
)

// The extraData layouts the warm-storage service decodes (reference curio-pdp-provider.md
// §1.1). The client signs; the provider carries the bytes opaquely to the chain.
var (
	abiCreate    = mustArgs("address", "uint256", "string[]", "string[]", "bytes")
	abiAdd       = mustArgs("uint256", "string[][]", "string[][]", "bytes")
	abiCreateAdd = mustArgs("bytes", "bytes")
	abiSig       = mustArgs("bytes")
)

func mustArgs(types ...string) ethabi.Arguments {
	args := make(ethabi.Arguments, len(types))
	for i, t := range types {
		typ, err := ethabi.NewType(t, "", nil)
		if err != nil {
			panic(err)
		}
		args[i] = ethabi.Argument{Type: typ}
	}
	return args
}

func splitMetadata(m []eip712.MetadataEntry) (keys, values []string) {
	keys, values = make([]string, len(m)), make([]string, len(m))
	for i, e := range m {
		keys[i], values[i] = e.Key, e.Value
	}
	return keys, values
}

// encodeCreateExtra is abi.encode(address payer, uint256 clientDataSetId, string[] keys,
// string[] values, bytes signature).
func encodeCreateExtra(payer common.Address, clientDataSetID *big.Int, meta []eip712.MetadataEntry, sig []byte) ([]byte, error) {
	k, v := splitMetadata(meta)
	b, err := abiCreate.Pack(payer, clientDataSetID, k, v, sig)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode create extraData: %w", err)
	}
	return b, nil
}

// encodeAddExtra is abi.encode(uint256 nonce, string[][] keys, string[][] values, bytes
// signature).
func encodeAddExtra(nonce *big.Int, meta [][]eip712.MetadataEntry, sig []byte) ([]byte, error) {
	ks, vs := make([][]string, len(meta)), make([][]string, len(meta))
	for i, m := range meta {
		ks[i], vs[i] = splitMetadata(m)
	}
	b, err := abiAdd.Pack(nonce, ks, vs, sig)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode addPieces extraData: %w", err)
	}
	return b, nil
}

// encodeCreateAndAddExtra is abi.encode(bytes createPayload, bytes addPayload).
func encodeCreateAndAddExtra(create, add []byte) ([]byte, error) {
	b, err := abiCreateAdd.Pack(create, add)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode create-and-add extraData: %w", err)
	}
	return b, nil
}

// encodeSigExtra is abi.encode(bytes signature), the layout of SchedulePieceRemovals and
// TerminateService extraData.
func encodeSigExtra(sig []byte) ([]byte, error) {
	b, err := abiSig.Pack(sig)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode signature extraData: %w", err)
	}
	return b, nil
}
