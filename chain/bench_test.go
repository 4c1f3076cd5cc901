package chain

import (
	"testing"

	"github.com/warmstore/warmstore/pdp"
)

// zeroPiece is a 32 GiB piece of zeros: every leaf's proof is the chain of zero-subtree roots,
// so a benchmark can prove a full-height (30) piece without 32 GiB of data.
func zeroPiece(t testing.TB) (pdp.PieceCID, pdp.Proof) {
	const height = 30
	raw := uint64(1) << height * 32 / 128 * 127
	cid, err := pdp.NewPieceCID(pdp.ZeroRoot(height), raw)
	if err != nil {
		t.Fatal(err)
	}
	pr := pdp.Proof{Leaf: pdp.ZeroRoot(0)}
	for h := 0; h < height; h++ {
		pr.Path = append(pr.Path, pdp.ZeroRoot(h))
	}
	return cid, pr
}

// provingWorld is a data set holding one 32 GiB piece, scheduled and at its challenge epoch.
func provingWorld(b *testing.B) (*world, uint64, *Tx) {
	w := newWorld(b)
	id := w.setup(false)
	cid, pr := zeroPiece(b)
	w.addPieces(id, testPiece{cid: cid})
	w.schedule(id)
	w.toChallenge(id)
	proofs := make([]pdp.Proof, NumChallenges)
	for i := range proofs {
		proofs[i] = pr
	}
	return w, id, w.tx(w.sp, TxProvePossession, ProvePossessionBody{DataSetID: id, Proofs: proofs})
}

// BenchmarkProvePossession applies (without committing) a 5-challenge proof set of a 32 GiB piece:
// signature recovery, body decoding, challenge derivation, the sum tree and 5 × 30 hashes.
// Peer: BenchmarkVerify5Proofs, the bare pdp.VerifyProof calls.
func BenchmarkProvePossession(b *testing.B) {
	w, _, tx := provingWorld(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := w.eng.Apply(w.st, tx, w.now, w.beacon); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proof-sets/s")
}

func BenchmarkVerify5Proofs(b *testing.B) {
	cid, pr := zeroPiece(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for j := 0; j < NumChallenges; j++ {
			if err := pdp.VerifyProof(cid.Root, cid.Height, uint64(j*7919), pr); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proof-sets/s")
}

// settleWorld proves a data set every hourly period for 30 days (720 periods); when
// addEveryPeriod is set a piece is added in every period, so the rail has 720 rate segments.
func settleWorld(b *testing.B, persistent bool, addEveryPeriod bool) (*world, *Tx) {
	w := newWorld(b)
	if persistent {
		openWorld(b, w, b.TempDir())
		b.Cleanup(func() { w.led.Close() })
	}
	id := w.setup(false)
	w.addPieces(id, makePiece(b, 1, 128))
	w.schedule(id)
	act := w.dataSet(id).Activation
	const periods = 720
	for n := 0; n < periods; n++ {
		if addEveryPeriod && n > 0 {
			w.now++
			w.addPieces(id, makePiece(b, uint64(n+10), 4))
		}
		w.toChallenge(id)
		if err := w.prove(id); err != nil {
			b.Fatal(err)
		}
		w.schedule(id)
	}
	w.now = act + periods*w.cfg().ProvingPeriod + 1
	return w, w.tx(w.sp, TxSettleRail, SettleRailBody{RailID: w.dataSet(id).PDPRail, UntilEpoch: act + periods*w.cfg().ProvingPeriod})
}

// BenchmarkSettle30DaysHourly settles (without committing) a PDP rail after 720 proven hourly
// periods: one rate segment, 720 proven-period lookups. The sub-benchmarks compare the
// in-memory state with pebble, and one rate segment with 720.
func BenchmarkSettle30DaysHourly(b *testing.B) {
	for _, bc := range []struct {
		name             string
		persistent, adds bool
	}{{"mem", false, false}, {"pebble", true, false}, {"mem-720-segments", false, true}, {"pebble-720-segments", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			w, tx := settleWorld(b, bc.persistent, bc.adds)
			var base Store = w.st
			if w.led != nil {
				base = w.led.store()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, evs, err := w.eng.Apply(base, tx, w.now, w.beacon)
				if err != nil {
					b.Fatal(err)
				}
				if s := findKind(evs, EvRailSettled); s == nil || s.Amount.IsZero() {
					b.Fatal("nothing settled")
				}
			}
		})
	}
}

// BenchmarkLedgerSubmit is the whole persistent path for a small transaction: signature check,
// rules, the log entry, state writes and events committed as one synced pebble batch. Peer:
// the same transaction through the pure engine over memory (BenchmarkEngineApplyFaucet).
func BenchmarkLedgerSubmit(b *testing.B) {
	w := newWorld(b)
	openWorld(b, w, b.TempDir())
	defer w.led.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.send(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkEngineApplyFaucet(b *testing.B) {
	w := newWorld(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.send(w.payer, TxFaucet, FaucetBody{Amount: tokens(1)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}
