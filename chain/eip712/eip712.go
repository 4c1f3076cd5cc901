// Package eip712 builds, hashes, signs and verifies the client authorizations of the warm-storage
// service: EIP-712 typed data under the domain ("FilecoinWarmStorageService", "1", chainId,
// verifyingContract), with the type strings of the FWSS contracts, so a signature made by a
// wallet for the Filecoin Onchain Cloud has the same digest here.
//
// Hashing goes through go-ethereum's signer/core/apitypes so the encoding rules (nested structs,
// arrays, dynamic bytes) are those of the reference implementation rather than hand-rolled.
package eip712

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// DomainName and DomainVersion identify the warm-storage service's EIP-712 domain.
const (
	DomainName    = "FilecoinWarmStorageService"
	DomainVersion = "1"
)

// Errors returned by Recover and the Verify helpers.
var (
	ErrBadSignature = errors.New("eip712: malformed signature")
	ErrWrongSigner  = errors.New("eip712: signature is not by the expected signer")
)

// Domain is the EIP-712 domain of one warm-storage deployment.
type Domain struct {
	ChainID           uint64         `json:"chainId"`
	VerifyingContract common.Address `json:"verifyingContract"`
}

// MetadataEntry is one key/value pair of data-set or piece metadata.
type MetadataEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CreateDataSet authorizes a provider (payee) to create a data set paid by the signer.
// ClientDataSetID is a single-use number chosen by the client.
type CreateDataSet struct {
	ClientDataSetID *big.Int        `json:"clientDataSetId"`
	Payee           common.Address  `json:"payee"`
	Metadata        []MetadataEntry `json:"metadata"`
}

// AddPieces authorizes adding pieces (their binary CIDs) to the client's data set; Nonce is
// single-use per payer. PieceMetadata[i] belongs to PieceData[i].
type AddPieces struct {
	ClientDataSetID *big.Int          `json:"clientDataSetId"`
	Nonce           *big.Int          `json:"nonce"`
	PieceData       [][]byte          `json:"pieceData"`
	PieceMetadata   [][]MetadataEntry `json:"pieceMetadata"`
}

// SchedulePieceRemovals authorizes removing pieces from the client's data set.
type SchedulePieceRemovals struct {
	ClientDataSetID *big.Int   `json:"clientDataSetId"`
	PieceIDs        []*big.Int `json:"pieceIds"`
}

// DeleteDataSet authorizes deleting the client's data set.
type DeleteDataSet struct {
	ClientDataSetID *big.Int `json:"clientDataSetId"`
}

// TerminateService authorizes an immediate (consent) termination of a data set's service.
type TerminateService struct {
	DataSetID *big.Int `json:"dataSetId"`
}

// Message is one of the typed structures above.
type Message interface {
	primaryType() string
	message() apitypes.TypedDataMessage
}

var types = apitypes.Types{
	"EIP712Domain": {
		{Name: "name", Type: "string"},
		{Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"},
		{Name: "verifyingContract", Type: "address"},
	},
	"MetadataEntry": {
		{Name: "key", Type: "string"},
		{Name: "value", Type: "string"},
	},
	"CreateDataSet": {
		{Name: "clientDataSetId", Type: "uint256"},
		{Name: "payee", Type: "address"},
		{Name: "metadata", Type: "MetadataEntry[]"},
	},
	"Cid": {
		{Name: "data", Type: "bytes"},
	},
	"PieceMetadata": {
		{Name: "pieceIndex", Type: "uint256"},
		{Name: "metadata", Type: "MetadataEntry[]"},
	},
	"AddPieces": {
		{Name: "clientDataSetId", Type: "uint256"},
		{Name: "nonce", Type: "uint256"},
		{Name: "pieceData", Type: "Cid[]"},
		{Name: "pieceMetadata", Type: "PieceMetadata[]"},
	},
	"SchedulePieceRemovals": {
		{Name: "clientDataSetId", Type: "uint256"},
		{Name: "pieceIds", Type: "uint256[]"},
	},
	"DeleteDataSet": {
		{Name: "clientDataSetId", Type: "uint256"},
	},
	"TerminateService": {
		{Name: "dataSetId", Type: "uint256"},
	},
}

// EncodeType returns the EIP-712 type string of a primary type, e.g.
// "SchedulePieceRemovals(uint256 clientDataSetId,uint256[] pieceIds)".
func EncodeType(primaryType string) string {
	td := apitypes.TypedData{Types: types}
	return string(td.EncodeType(primaryType))
}

func bigOrZero(b *big.Int) *big.Int {
	if b == nil {
		return new(big.Int)
	}
	return b
}

func entries(m []MetadataEntry) []interface{} {
	out := make([]interface{}, 0, len(m))
	for _, e := range m {
		out = append(out, map[string]interface{}{"key": e.Key, "value": e.Value})
	}
	return out
}

func (m CreateDataSet) primaryType() string { return "CreateDataSet" }
func (m CreateDataSet) message() apitypes.TypedDataMessage {
	return apitypes.TypedDataMessage{
		"clientDataSetId": bigOrZero(m.ClientDataSetID),
		"payee":           m.Payee.Hex(),
		"metadata":        entries(m.Metadata),
	}
}

func (m AddPieces) primaryType() string { return "AddPieces" }
func (m AddPieces) message() apitypes.TypedDataMessage {
	cids := make([]interface{}, 0, len(m.PieceData))
	for _, d := range m.PieceData {
		cids = append(cids, map[string]interface{}{"data": hexutil.Bytes(d)})
	}
	metas := make([]interface{}, 0, len(m.PieceMetadata))
	for i, pm := range m.PieceMetadata {
		metas = append(metas, map[string]interface{}{"pieceIndex": big.NewInt(int64(i)), "metadata": entries(pm)})
	}
	return apitypes.TypedDataMessage{
		"clientDataSetId": bigOrZero(m.ClientDataSetID),
		"nonce":           bigOrZero(m.Nonce),
		"pieceData":       cids,
		"pieceMetadata":   metas,
	}
}

func (m SchedulePieceRemovals) primaryType() string { return "SchedulePieceRemovals" }
func (m SchedulePieceRemovals) message() apitypes.TypedDataMessage {
	ids := make([]interface{}, 0, len(m.PieceIDs))
	for _, id := range m.PieceIDs {
		ids = append(ids, bigOrZero(id))
	}
	return apitypes.TypedDataMessage{"clientDataSetId": bigOrZero(m.ClientDataSetID), "pieceIds": ids}
}

func (m DeleteDataSet) primaryType() string { return "DeleteDataSet" }
func (m DeleteDataSet) message() apitypes.TypedDataMessage {
	return apitypes.TypedDataMessage{"clientDataSetId": bigOrZero(m.ClientDataSetID)}
}

func (m TerminateService) primaryType() string { return "TerminateService" }
func (m TerminateService) message() apitypes.TypedDataMessage {
	return apitypes.TypedDataMessage{"dataSetId": bigOrZero(m.DataSetID)}
}

// TypedData returns the full EIP-712 document (as a wallet's eth_signTypedData_v4 takes it).
func (d Domain) TypedData(m Message) apitypes.TypedData {
	// The apitypes encoder walks the Types map; give each document only the types its primary
	// type depends on, plus the domain, so wallets show a minimal document.
	td := apitypes.TypedData{Types: types, PrimaryType: m.primaryType()}
	deps := td.Dependencies(m.primaryType(), nil)
	sub := apitypes.Types{"EIP712Domain": types["EIP712Domain"]}
	for _, name := range deps {
		sub[name] = types[name]
	}
	return apitypes.TypedData{
		Types:       sub,
		PrimaryType: m.primaryType(),
		Domain: apitypes.TypedDataDomain{
			Name:              DomainName,
			Version:           DomainVersion,
			ChainId:           math.NewHexOrDecimal256(int64(d.ChainID)),
			VerifyingContract: d.VerifyingContract.Hex(),
		},
		Message: m.message(),
	}
}

// Digest returns the 32-byte EIP-712 digest keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(m)).
func (d Domain) Digest(m Message) (common.Hash, error) {
	h, _, err := apitypes.TypedDataAndHash(d.TypedData(m))
	if err != nil {
		return common.Hash{}, fmt.Errorf("eip712: hash %s: %w", m.primaryType(), err)
	}
	return common.BytesToHash(h), nil
}

// Sign signs m with key and returns a 65-byte signature r ‖ s ‖ v with v ∈ {27, 28}, the form
// Solidity's ecrecover and wallets use.
func (d Domain) Sign(key *ecdsa.PrivateKey, m Message) ([]byte, error) {
	h, err := d.Digest(m)
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return nil, fmt.Errorf("eip712: sign %s: %w", m.primaryType(), err)
	}
	sig[64] += 27
	return sig, nil
}

// Recover returns the address that signed m. v may be 0/1 or 27/28.
func (d Domain) Recover(m Message, sig []byte) (common.Address, error) {
	h, err := d.Digest(m)
	if err != nil {
		return common.Address{}, err
	}
	return RecoverHash(h, sig)
}

// RecoverHash recovers the signer of a 32-byte hash from a 65-byte r ‖ s ‖ v signature.
func RecoverHash(h common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("%w: %d bytes, want 65", ErrBadSignature, len(sig))
	}
	s := make([]byte, 65)
	copy(s, sig)
	if s[64] >= 27 {
		s[64] -= 27
	}
	if s[64] > 1 {
		return common.Address{}, fmt.Errorf("%w: v = %d", ErrBadSignature, sig[64])
	}
	pub, err := crypto.SigToPub(h[:], s)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Verify checks that sig over m was made by want.
func (d Domain) Verify(m Message, sig []byte, want common.Address) error {
	got, err := d.Recover(m, sig)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s signed %s, want %s", ErrWrongSigner, got.Hex(), m.primaryType(), want.Hex())
	}
	return nil
}
