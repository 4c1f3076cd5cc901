package provider

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// ProvingMetrics are the prover's Prometheus metrics.
type ProvingMetrics struct {
	// ProofLatency is the wall time from starting a period's proof (challenges derived, leaves
	// read) to the chain accepting it.
	ProofLatency prometheus.Histogram
	// ProofsOK counts periods proven on chain.
	ProofsOK prometheus.Counter
	// ProofsFailed counts periods the provider could not prove (a piece lost or damaged, a
	// proof that did not verify locally, a refusal by the chain); nothing was submitted or the
	// submission was refused.
	ProofsFailed prometheus.Counter
	// ProofsLate counts periods whose deadline passed before a proof could be submitted.
	ProofsLate prometheus.Counter
	// Faults counts FaultRecord events the chain emitted for this provider's data sets.
	Faults prometheus.Counter
	// DataSets is the number of data sets the prover tracks.
	DataSets prometheus.Gauge
	// Settlements counts accepted rail settlements; SettledNet sums what they paid the payee
	// (in 10^-18 USDFC, as a float: for dashboards, not accounting).
	Settlements prometheus.Counter
	SettledNet  prometheus.Counter
}

// NewProvingMetrics creates the metrics and registers them on reg (nil: not registered).
func NewProvingMetrics(reg prometheus.Registerer) (*ProvingMetrics, error) {
	m := &ProvingMetrics{
		ProofLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "warmstore_provider_proof_latency_seconds",
			Help:    "Time from starting a proving period's proof to its acceptance by the chain.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		ProofsOK:     prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_proofs_ok_total", Help: "Proving periods proven on chain."}),
		ProofsFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_proofs_failed_total", Help: "Proving periods that could not be proven (lost or damaged piece, refused proof)."}),
		ProofsLate:   prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_proofs_late_total", Help: "Proving periods whose deadline passed before a proof was submitted."}),
		Faults:       prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_faults_total", Help: "FaultRecord events recorded by the chain for this provider's data sets."}),
		DataSets:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "warmstore_provider_data_sets", Help: "Data sets this provider is proving."}),
		Settlements:  prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_settlements_total", Help: "Rail settlements accepted by the chain."}),
		SettledNet:   prometheus.NewCounter(prometheus.CounterOpts{Name: "warmstore_provider_settled_net_base_units_total", Help: "Net amount paid to the payee by settlements, in 1e-18 USDFC."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.ProofLatency, m.ProofsOK, m.ProofsFailed, m.ProofsLate, m.Faults, m.DataSets, m.Settlements, m.SettledNet} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("provider: proving metrics already registered: %w", err)
			}
			return nil, fmt.Errorf("provider: register proving metrics: %w", err)
		}
	}
	return m, nil
}
