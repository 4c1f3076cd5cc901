package pdp

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"testing"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
)

// challengeOracle recomputes a challenge index with independent code: go-ethereum's Keccak256
// over the Solidity abi.encodePacked layout and math/big for the 256-bit modulo.
func challengeOracle(seed [32]byte, setID, i, challengeRange uint64) uint64 {
	setWord := make([]byte, 32)
	new(big.Int).SetUint64(setID).FillBytes(setWord)
	idx := make([]byte, 8)
	binary.BigEndian.PutUint64(idx, i)
	h := ethcrypto.Keccak256(seed[:], setWord, idx)
	v := new(big.Int).SetBytes(h)
	return v.Mod(v, new(big.Int).SetUint64(challengeRange)).Uint64()
}

func TestChallengeIndexMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ranges := []uint64{1, 2, 3, 4, 127, 1 << 20, 1<<30 + 7, 1<<50 - 1, 1<<63 + 12345, ^uint64(0)}
	for k := 0; k < 2000; k++ {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		setID := rng.Uint64() >> rng.UintN(64)
		i := rng.Uint64() >> rng.UintN(64)
		r := ranges[k%len(ranges)]
		if k%3 == 0 {
			r = rng.Uint64()>>rng.UintN(64) | 1
		}
		got := ChallengeIndex(seed, setID, i, r)
		want := challengeOracle(seed, setID, i, r)
		if got != want {
			t.Fatalf("seed %x set %d i %d range %d: got %d, oracle %d", seed, setID, i, r, got, want)
		}
		if got >= r {
			t.Fatalf("index %d not below range %d", got, r)
		}
	}
}

// TestChallengeIndexFixedVector pins one value so a change of layout (e.g. setID encoded as 8
// bytes, or i as uint256) is caught even if the oracle were changed the same way. The digest and
// index were produced once with go-ethereum's Keccak256 + math/big.
func TestChallengeIndexFixedVector(t *testing.T) {
	var seed [32]byte
	for j := range seed {
		seed[j] = byte(j + 1)
	}
	const setID, i, r = 7, 3, 1_000_003
	setWord := make([]byte, 32)
	setWord[31] = setID
	idx := []byte{0, 0, 0, 0, 0, 0, 0, i}
	const wantDigest = "2c08a5a0ef1cc08ba5afe1a4f06a591e29f4cd790f4991716a618da0778e0d60"
	if got := hex.EncodeToString(ethcrypto.Keccak256(seed[:], setWord, idx)); got != wantDigest {
		t.Fatalf("oracle digest %s, want %s", got, wantDigest)
	}
	if got := ChallengeIndex(seed, setID, i, r); got != 598176 {
		t.Fatalf("ChallengeIndex = %d, want 598176", got)
	}
	full, _ := new(big.Int).SetString(wantDigest, 16)
	want := new(big.Int).Mod(full, new(big.Int).SetUint64(^uint64(0))).Uint64()
	if got := ChallengeIndex(seed, setID, i, ^uint64(0)); got != want {
		t.Fatalf("full-range ChallengeIndex = %d, want %d", got, want)
	}
}

func TestChallengeIndicesOrderAndRangeOne(t *testing.T) {
	seed := [32]byte{0xde, 0xad, 0xbe, 0xef}
	got := ChallengeIndices(seed, 42, 5, 1<<40)
	if len(got) != 5 {
		t.Fatalf("len %d", len(got))
	}
	for i, v := range got {
		if w := ChallengeIndex(seed, 42, uint64(i), 1<<40); v != w {
			t.Fatalf("element %d = %d, ChallengeIndex = %d", i, v, w)
		}
	}
	for _, v := range ChallengeIndices(seed, 42, 10, 1) {
		if v != 0 {
			t.Fatalf("range 1 gave %d", v)
		}
	}
	if n := len(ChallengeIndices(seed, 1, 0, 5)); n != 0 {
		t.Fatalf("n=0 gave %d indices", n)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("range 0 did not panic")
		}
	}()
	ChallengeIndex(seed, 1, 0, 0)
}

func TestMod256(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for k := 0; k < 1000; k++ {
		var x [32]byte
		for j := range x {
			x[j] = byte(rng.Uint32())
		}
		m := rng.Uint64()>>rng.UintN(64) | 1
		want := new(big.Int).Mod(new(big.Int).SetBytes(x[:]), new(big.Int).SetUint64(m)).Uint64()
		if got := mod256(&x, m); got != want {
			t.Fatalf("%x mod %d = %d, want %d", x, m, got, want)
		}
	}
}
