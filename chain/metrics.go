package chain

import (
	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are the chain server's Prometheus collectors.
type serverMetrics struct {
	txs     *prometheus.CounterVec // kind, result (ok or the error code)
	events  *prometheus.CounterVec // kind
	waiters prometheus.Gauge
}

func newServerMetrics() *serverMetrics {
	const ns = "warmstore_chain"
	return &serverMetrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "transactions_total",
			Help: "Transactions submitted, by kind and result (ok or the refusal code)."}, []string{"kind", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_total",
			Help: "Events emitted by accepted transactions, by kind (FaultRecord counts faults)."}, []string{"kind"}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "event_long_polls",
			Help: "Event long-polls currently waiting."}),
	}
}

// Register adds the server's collectors (and gauges of the ledger's head) to reg, for the
// daemon's /metrics.
func (s *Server) Register(reg prometheus.Registerer) error {
	const ns = "warmstore_chain"
	cs := []prometheus.Collector{s.m.txs, s.m.events, s.m.waiters,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "epoch", Help: "Current epoch."},
			func() float64 { return float64(s.l.Head().Epoch) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "transactions_applied", Help: "Transactions in the log."},
			func() float64 { return float64(s.l.Head().TxSeq) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
