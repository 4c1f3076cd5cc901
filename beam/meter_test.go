package beam

import (
	mathbig "math/big"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"pgregory.net/rapid"

	"github.com/warmstore/warmstore/chain"
)

// The meter as a state machine against a model: whatever order reservations, settlements,
// reports (the chain charging the rails) and restarts come in, unreported plus reserved bytes
// never exceed what the rails' remaining lockups can pay, served totals only grow, and a
// reopened meter has the same totals.
func TestMeterStateMachine(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := filepath.Join(t.TempDir(), rapid.StringMatching(`[a-z]{8}`).Draw(rt, "dir"))
		cat := newCatalog(common.Address{9})
		// Lockups worth a few thousand bytes, so exhaustion is reached.
		perByte := new(mathbig.Int).Quo(chain.CDNPricePerTiB.Int, mathbig.NewInt(1<<40))
		cdnBytes := rapid.Uint64Range(0, 20000).Draw(rt, "cdnQuota")
		missBytes := rapid.Uint64Range(0, 20000).Draw(rt, "missQuota")
		cat.sets[1] = &dataSet{ID: 1, WithCDN: true,
			CDNLockup:  new(mathbig.Int).Mul(perByte, new(mathbig.Int).SetUint64(cdnBytes+1)),
			MissLockup: new(mathbig.Int).Mul(perByte, new(mathbig.Int).SetUint64(missBytes+1))}
		m, err := openMeter(dir, cat)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { m.close() }()
		type res struct {
			n    uint64
			miss bool
		}
		var open []res
		var model usage // served
		check := func() {
			cq, mq, _ := cat.quotaBytes(1)
			rep := cat.reportedOf(1)
			m.mu.Lock()
			s, r := m.served[1], m.reserved[1]
			m.mu.Unlock()
			if s != model {
				rt.Fatalf("served %+v, model %+v", s, model)
			}
			if sub(s.CDN, rep.CDN)+r.CDN > cq || sub(s.Miss, rep.Miss)+r.Miss > mq {
				rt.Fatalf("over quota: served %+v reported %+v reserved %+v quota %d/%d", s, rep, r, cq, mq)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"reserve": func(rt *rapid.T) {
				n := rapid.Uint64Range(1, 5000).Draw(rt, "n")
				miss := rapid.Bool().Draw(rt, "miss")
				if err := m.reserve(1, n, miss); err == nil {
					open = append(open, res{n, miss})
				}
				check()
			},
			"settle": func(rt *rapid.T) {
				if len(open) == 0 {
					rt.Skip("nothing reserved")
				}
				i := rapid.IntRange(0, len(open)-1).Draw(rt, "i")
				r := open[i]
				open = append(open[:i], open[i+1:]...)
				served := rapid.Uint64Range(0, r.n).Draw(rt, "served")
				if err := m.settle(1, r.n, r.miss, served, r.miss); err != nil {
					rt.Fatal(err)
				}
				model.CDN += served
				if r.miss {
					model.Miss += served
				}
				check()
			},
			"report": func(rt *rapid.T) {
				// What the chain does on ReportUsage, then the follower's bookkeeping.
				rep := cat.reportedOf(1)
				b := usage{sub(model.CDN, rep.CDN), sub(model.Miss, rep.Miss)}
				cat.mu.Lock()
				ds := cat.sets[1]
				ds.CDNLockup = new(mathbig.Int).Sub(ds.CDNLockup, chain.EgressCharge(b.CDN, chain.CDNPricePerTiB).Int)
				ds.MissLockup = new(mathbig.Int).Sub(ds.MissLockup, chain.EgressCharge(b.Miss, chain.CacheMissPricePerTiB).Int)
				if ds.CDNLockup.Sign() < 0 || ds.MissLockup.Sign() < 0 {
					cat.mu.Unlock()
					rt.Fatalf("report of %+v would be refused: lockup below zero", b)
				}
				cat.reported[1] = usage{rep.CDN + b.CDN, rep.Miss + b.Miss}
				cat.mu.Unlock()
				check()
			},
			"restart": func(rt *rapid.T) {
				if len(open) > 0 {
					rt.Skip("responses in flight")
				}
				if err := m.close(); err != nil {
					rt.Fatal(err)
				}
				if m, err = openMeter(dir, cat); err != nil {
					rt.Fatal(err)
				}
				check()
			},
		})
	})
}
