package eip712

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The type strings of FilecoinWarmStorageService's SignatureVerificationLib and the Synapse SDK.
func TestEncodeTypeMatchesContract(t *testing.T) {
	want := map[string]string{
		"CreateDataSet":         "CreateDataSet(uint256 clientDataSetId,address payee,MetadataEntry[] metadata)MetadataEntry(string key,string value)",
		"AddPieces":             "AddPieces(uint256 clientDataSetId,uint256 nonce,Cid[] pieceData,PieceMetadata[] pieceMetadata)Cid(bytes data)MetadataEntry(string key,string value)PieceMetadata(uint256 pieceIndex,MetadataEntry[] metadata)",
		"SchedulePieceRemovals": "SchedulePieceRemovals(uint256 clientDataSetId,uint256[] pieceIds)",
		"DeleteDataSet":         "DeleteDataSet(uint256 clientDataSetId)",
		"TerminateService":      "TerminateService(uint256 dataSetId)",
	}
	for name, s := range want {
		if got := EncodeType(name); got != s {
			t.Errorf("%s: got %q want %q", name, got, s)
		}
	}
}

// The domain separator is computed by hand from the EIP-712 definition and compared with the
// library's, so a wrong domain type would be caught.
func TestDigestByHand(t *testing.T) {
	d := Domain{ChainID: 314159, VerifyingContract: common.HexToAddress("0x1234567890123456789012345678901234567890")}
	m := TerminateService{DataSetID: big.NewInt(7)}
	got, err := d.Digest(m)
	if err != nil {
		t.Fatal(err)
	}
	word := func(b *big.Int) []byte { return common.LeftPadBytes(b.Bytes(), 32) }
	domType := crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	sep := crypto.Keccak256(domType, crypto.Keccak256([]byte(DomainName)), crypto.Keccak256([]byte("1")),
		word(big.NewInt(314159)), common.LeftPadBytes(d.VerifyingContract.Bytes(), 32))
	st := crypto.Keccak256(crypto.Keccak256([]byte("TerminateService(uint256 dataSetId)")), word(big.NewInt(7)))
	want := crypto.Keccak256([]byte{0x19, 0x01}, sep, st)
	if got != common.BytesToHash(want) {
		t.Fatalf("digest %x want %x", got, want)
	}
}

func TestSignRecover(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	d := Domain{ChainID: 31415926, VerifyingContract: common.HexToAddress("0x00000000000000000000000000000000000000aa")}
	m := AddPieces{ClientDataSetID: big.NewInt(1), Nonce: big.NewInt(9), PieceData: [][]byte{{1, 2, 3}},
		PieceMetadata: [][]MetadataEntry{{{Key: "k", Value: "v"}}}}
	sig, err := d.Sign(key, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(m, sig, crypto.PubkeyToAddress(key.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(m, sig, crypto.PubkeyToAddress(other.PublicKey)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("wrong signer: %v", err)
	}
	tampered := m
	tampered.Nonce = big.NewInt(10)
	if err := d.Verify(tampered, sig, crypto.PubkeyToAddress(key.PublicKey)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("tampered: %v", err)
	}
	if err := d.Verify(m, sig[:64], crypto.PubkeyToAddress(key.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("short: %v", err)
	}
	d2 := d
	d2.ChainID++
	if err := d2.Verify(m, sig, crypto.PubkeyToAddress(key.PublicKey)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("other chain: %v", err)
	}
}

func ExampleDomain_Sign() {
	key, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	d := Domain{ChainID: 31415926, VerifyingContract: common.HexToAddress("0x00000000000000000000000000000000000000aa")}
	m := CreateDataSet{ClientDataSetID: big.NewInt(1), Payee: common.HexToAddress("0x00000000000000000000000000000000000000bb")}
	sig, _ := d.Sign(key, m)
	signer, _ := d.Recover(m, sig)
	fmt.Println(signer == crypto.PubkeyToAddress(key.PublicKey), len(sig))
	// Output: true 65
}
