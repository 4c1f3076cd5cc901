package payments

import (
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"
)

// ninetyPercent pays 90% of every proposed segment (rounded down) and settles it fully.
type ninetyPercent struct{ calls int }

func (v *ninetyPercent) ValidatePayment(_ Rail, proposed abi.TokenAmount, _, to abi.ChainEpoch, _ abi.TokenAmount) (ValidationResult, error) {
	v.calls++
	return ValidationResult{Amount: big.Div(big.Mul(proposed, big.NewInt(9)), big.NewInt(10)), SettleUpTo: to}, nil
}

// manySegments builds a state with one rail whose rate changed at every epoch 1..n
// (rates alternate 10 and 11), so settling it to n+1 walks n+1 segments.
func manySegments(tb testing.TB, n int) (*MemState, RailID, *ninetyPercent) {
	tb.Helper()
	st := NewMemState()
	v := &ninetyPercent{}
	l := NewLedger(st, ValidatorMap{validA: v})
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(l.Deposit(tok, payerA, big.NewInt(1<<62), 0))
	must(l.SetOperatorApproval(tok, payerA, operatorA, true, big.NewInt(1000), big.NewInt(1<<40), 1000, 0))
	id, err := l.CreateRail(operatorA, tok, payerA, payeeA, validA, 0, Address{}, 0)
	must(err)
	must(l.ModifyRailLockup(operatorA, id, 100, big.Zero(), 0))
	_, err = l.ModifyRailPayment(operatorA, id, big.NewInt(10), big.Zero(), 0)
	must(err)
	for e := 1; e <= n; e++ {
		_, err := l.ModifyRailPayment(operatorA, id, big.NewInt(int64(10+e%2)), big.Zero(), abi.ChainEpoch(e))
		must(err)
	}
	return st, id, v
}

func TestSettleManySegments(t *testing.T) {
	st, id, v := manySegments(t, manySegmentsInTest)
	l := NewLedger(st, ValidatorMap{validA: v})
	n := abi.ChainEpoch(manySegmentsInTest)
	s, err := l.SettleRail(id, n+1, n+1)
	if err != nil {
		t.Fatal(err)
	}
	// Epoch e (1..n+1) was paid at the rate in force during it: rate set at e−1.
	want := big.Zero()
	for e := int64(1); e <= int64(n)+1; e++ {
		rate := int64(10 + (e-1)%2)
		want = big.Add(want, big.NewInt(rate*9/10))
	}
	if s.Segments != int(n)+1 || v.calls != int(n)+1 || s.SettledUpTo != n+1 || !s.Gross.Equals(want) {
		t.Fatalf("segments %d calls %d settled %d paid %s (want %s)", s.Segments, v.calls, s.SettledUpTo, s.Gross, want)
	}
	if _, _, _, rcs := st.Len(); rcs != 0 {
		t.Fatalf("%d rate changes left after settlement", rcs)
	}
}

// BenchmarkSettle100kSegments settles one rail across 100,000 rate changes, each
// segment through the validator (on-chain, ~25,000 segments run out of gas).
func BenchmarkSettle100kSegments(b *testing.B) {
	const n = 100_000
	base, id, _ := manySegments(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := base.Clone()
		v := &ninetyPercent{}
		l := NewLedger(st, ValidatorMap{validA: v})
		b.StartTimer()
		s, err := l.SettleRail(id, n+1, n+1)
		if err != nil {
			b.Fatal(err)
		}
		if s.Segments != n+1 || v.calls != n+1 {
			b.Fatalf("segments %d calls %d", s.Segments, v.calls)
		}
	}
}

// BenchmarkSettleOneSegment100kEpochs is the peer of BenchmarkSettle100kSegments: the
// same 100,001 epochs at one rate, so one validator call. The ratio between the two is
// the cost of walking segments.
func BenchmarkSettleOneSegment100kEpochs(b *testing.B) {
	const n = 100_000
	base, id, _ := manySegments(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := base.Clone()
		v := &ninetyPercent{}
		l := NewLedger(st, ValidatorMap{validA: v})
		b.StartTimer()
		s, err := l.SettleRail(id, n+1, n+1)
		if err != nil {
			b.Fatal(err)
		}
		if s.Segments != 1 || s.SettledUpTo != n+1 {
			b.Fatalf("%+v", s)
		}
	}
}

// BenchmarkModifyRailPayment measures one rate change (each enqueues a segment), the
// operation chain/ runs for every piece addition.
func BenchmarkModifyRailPayment(b *testing.B) {
	st, id, v := manySegments(b, 0)
	l := NewLedger(st, ValidatorMap{validA: v})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.ModifyRailPayment(operatorA, id, big.NewInt(int64(10+i%2)), big.Zero(), abi.ChainEpoch(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}
