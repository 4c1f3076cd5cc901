package chain

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/warmstore/warmstore/chain/eip712"
)

// TxKind names a transaction type.
type TxKind string

// Transaction kinds. The body of each is the struct of the same name (e.g. TxCreateDataSet ↔
// CreateDataSetBody).
const (
	TxRegisterProvider      TxKind = "RegisterProvider"
	TxFaucet                TxKind = "Faucet"
	TxDeposit               TxKind = "Deposit"
	TxWithdraw              TxKind = "Withdraw"
	TxSetOperatorApproval   TxKind = "SetOperatorApproval"
	TxCreateDataSet         TxKind = "CreateDataSet"
	TxAddPieces             TxKind = "AddPieces"
	TxSchedulePieceRemovals TxKind = "SchedulePieceRemovals"
	TxNextProvingPeriod     TxKind = "NextProvingPeriod"
	TxProvePossession       TxKind = "ProvePossession"
	TxRecordFaults          TxKind = "RecordFaults"
	TxSettleRail            TxKind = "SettleRail"
	TxTerminateService      TxKind = "TerminateService"
	TxDeleteDataSet         TxKind = "DeleteDataSet"
	TxReportUsage           TxKind = "ReportUsage"
	TxTopUpCDN              TxKind = "TopUpCDN"
)

// Tx is a signed transaction: the sender's account nonce, a kind and its JSON body, signed with
// secp256k1 over SigningHash. The body bytes are signed exactly as sent, so any change to them
// invalidates the signature.
type Tx struct {
	Kind  TxKind          `json:"kind"`
	From  common.Address  `json:"from"`
	Nonce uint64          `json:"nonce"`
	Body  json.RawMessage `json:"body"`
	Sig   hexutil.Bytes   `json:"sig"`
}

// SigningHash is keccak256("warmstore/tx/v1" ‖ chainID u64 ‖ len(kind) u8 ‖ kind ‖ from ‖ nonce u64 ‖ body).
// The chain id keeps a devnet signature from being replayed on another ledger.
func (tx *Tx) SigningHash(chainID uint64) common.Hash {
	var b bytes.Buffer
	b.WriteString("warmstore/tx/v1")
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], chainID)
	b.Write(n[:])
	b.WriteByte(byte(len(tx.Kind)))
	b.WriteString(string(tx.Kind))
	b.Write(tx.From[:])
	binary.BigEndian.PutUint64(n[:], tx.Nonce)
	b.Write(n[:])
	b.Write(tx.Body)
	return crypto.Keccak256Hash(b.Bytes())
}

// Hash identifies an accepted transaction: keccak256(signing hash ‖ signature).
func (tx *Tx) Hash(chainID uint64) common.Hash {
	return tx.hashOf(tx.SigningHash(chainID))
}

// hashOf is Hash given the already computed signing hash, so a caller that also recovers the
// sender hashes the body (the bulk of a proof submission) once.
func (tx *Tx) hashOf(signing common.Hash) common.Hash {
	return crypto.Keccak256Hash(signing[:], tx.Sig)
}

// NewTx builds and signs a transaction of kind with body from the key's address.
func NewTx(key *ecdsa.PrivateKey, chainID uint64, kind TxKind, nonce uint64, body any) (*Tx, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("chain: encode %s body: %w", kind, err)
	}
	tx := &Tx{Kind: kind, From: crypto.PubkeyToAddress(key.PublicKey), Nonce: nonce, Body: raw}
	h := tx.SigningHash(chainID)
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return nil, fmt.Errorf("chain: sign %s: %w", kind, err)
	}
	sig[64] += 27
	tx.Sig = sig
	return tx, nil
}

// Sender verifies the signature and returns the signer, which must equal From.
func (tx *Tx) Sender(chainID uint64) (common.Address, error) {
	return tx.senderOf(tx.SigningHash(chainID))
}

// senderOf is Sender given the already computed signing hash.
func (tx *Tx) senderOf(signing common.Hash) (common.Address, error) {
	got, err := eip712.RecoverHash(signing, tx.Sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if got != tx.From {
		return common.Address{}, fmt.Errorf("%w: transaction from %s is signed by %s", ErrWrongSigner, tx.From.Hex(), got.Hex())
	}
	return got, nil
}

// decodeBody decodes a body strictly: unknown fields and trailing data are malformed input.
func decodeBody(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data after body", ErrMalformed)
	}
	return nil
}
