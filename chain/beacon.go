package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
)

// ErrFutureRandomness is returned when randomness is asked for an epoch that has not begun.
var ErrFutureRandomness = errors.New("chain: randomness of a future epoch is not available")

// Beacon supplies the 32-byte randomness of an epoch. Implementations must be deterministic (a
// replay of the log asks again and must get the same answer) and unpredictable before the epoch:
// the ledger only asks for epochs ≤ now, and the server only reveals those.
type Beacon interface {
	Randomness(epoch abi.ChainEpoch) ([32]byte, error)
}

// SecretBeacon is the devnet beacon: HMAC-SHA256(secret, "warmstore/beacon" ‖ epoch as uint64
// big-endian). The secret lives only in the ledger, so nobody else can compute a future value.
// A drand-backed Beacon can replace it without touching the rules.
type SecretBeacon struct {
	secret []byte
}

// NewSecretBeacon returns a beacon keyed by secret (at least 16 bytes).
func NewSecretBeacon(secret []byte) (*SecretBeacon, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("chain: beacon secret is %d bytes, need at least 16", len(secret))
	}
	return &SecretBeacon{secret: append([]byte(nil), secret...)}, nil
}

// Randomness implements Beacon.
func (b *SecretBeacon) Randomness(epoch abi.ChainEpoch) ([32]byte, error) {
	var out [32]byte
	if epoch < 0 {
		return out, fmt.Errorf("chain: randomness of negative epoch %d", epoch)
	}
	m := hmac.New(sha256.New, b.secret)
	m.Write([]byte("warmstore/beacon"))
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(epoch))
	m.Write(e[:])
	copy(out[:], m.Sum(nil))
	return out, nil
}
