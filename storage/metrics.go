package storage

import (
	"sync/atomic"
	"time"

	"github.com/warmstore/warmstore/pdp"
)

// Metrics is a snapshot of the store's counters since Open. The provider exports them as
// Prometheus counters.
type Metrics struct {
	IngestedPieces   uint64 // new pieces stored
	IngestedBytes    uint64 // raw bytes of new pieces stored
	DedupedPieces    uint64 // ingests of a piece already stored (kept once)
	IngestFailures   uint64 // ingests that ended in an error (nothing kept)
	MismatchRejects  uint64 // ingests rejected because the bytes did not match the expected CID
	ProofsServed     uint64 // leaf proofs produced
	ProofBytesRead   uint64 // piece and sidecar bytes read for proofs
	ScrubbedPieces   uint64 // pieces fully scrubbed
	ScrubbedBytes    uint64 // piece bytes read by the scrubber
	DamagedPieces    uint64 // damage events raised (data or sidecar)
	LayersRebuilt    uint64 // sidecars rebuilt from the piece data
	GCRemovedPieces  uint64 // pieces removed by garbage collection
	GCRemovedBytes   uint64 // raw bytes removed by garbage collection
	OrphansRemoved   uint64 // blobs without an index entry removed by reconciliation
	ReadersOpened    uint64 // retrieval readers opened
	ReconcileMissing uint64 // index entries whose blobs were missing or the wrong size
}

type counters struct {
	ingestedPieces, ingestedBytes, dedupedPieces, ingestFailures, mismatchRejects atomic.Uint64
	proofsServed, proofBytesRead, scrubbedPieces, scrubbedBytes, damagedPieces    atomic.Uint64
	layersRebuilt, gcRemovedPieces, gcRemovedBytes, orphansRemoved, readersOpened atomic.Uint64
	reconcileMissing                                                              atomic.Uint64
}

// Metrics returns the current counters.
func (s *Store) Metrics() Metrics {
	c := &s.metrics
	return Metrics{
		IngestedPieces: c.ingestedPieces.Load(), IngestedBytes: c.ingestedBytes.Load(),
		DedupedPieces: c.dedupedPieces.Load(), IngestFailures: c.ingestFailures.Load(),
		MismatchRejects: c.mismatchRejects.Load(), ProofsServed: c.proofsServed.Load(),
		ProofBytesRead: c.proofBytesRead.Load(), ScrubbedPieces: c.scrubbedPieces.Load(),
		ScrubbedBytes: c.scrubbedBytes.Load(), DamagedPieces: c.damagedPieces.Load(),
		LayersRebuilt: c.layersRebuilt.Load(), GCRemovedPieces: c.gcRemovedPieces.Load(),
		GCRemovedBytes: c.gcRemovedBytes.Load(), OrphansRemoved: c.orphansRemoved.Load(),
		ReadersOpened: c.readersOpened.Load(), ReconcileMissing: c.reconcileMissing.Load(),
	}
}

// DamageKind says what is damaged.
type DamageKind uint8

const (
	// DamageData: the piece bytes do not match the commitment (or are missing/short).
	DamageData DamageKind = iota + 1
	// DamageLayer: the sidecar failed its checksum or shape check. The store rebuilds it from
	// the data; the event is informational when the rebuild succeeds.
	DamageLayer
	// DamageMissing: the piece's data blob is gone.
	DamageMissing
)

func (k DamageKind) String() string {
	switch k {
	case DamageData:
		return "data"
	case DamageLayer:
		return "layer"
	case DamageMissing:
		return "missing"
	}
	return "unknown"
}

// DamageEvent reports a damaged piece to Options.OnDamage.
type DamageEvent struct {
	Piece   pdp.PieceCID
	Kind    DamageKind
	Section int64 // damaged section, or -1 when not known
	Detail  string
	Time    time.Time
}
