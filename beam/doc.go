// Package beam is warmstore's metered CDN edge ("sp beam").
//
// An Edge serves GET|HEAD /{payer}/{pieceCid} (or {payer}.{domain}/{pieceCid}) with Range for
// pieces that sit in a data set of that payer whose client enabled CDN ("withCDN" metadata).
// Hits come from a size-bounded disk cache (least recently used out first; it is rebuilt from
// the directory on restart). A miss is fetched from the provider with the best measured
// time-to-first-byte and success rate, streamed to the client as it arrives, and verified by
// computing commP on the fly: the piece is cached, and the client receives its last byte, only
// when the commitment equals the requested piece CID. When it does not, the connection is
// aborted before the last byte, so a client never sees an unverified transfer complete.
//
// Concurrent misses for one piece wait (Config.CoalesceWait) for the running fetch and are
// then served from the cache, so a burst costs the origin one transfer.
//
// A Range request on a miss fetches the whole piece from the origin (so it can be verified and
// cached) and passes the requested bytes on as they go by; the range's last byte is held back
// until the whole piece has been verified. That costs a ranged miss the time to the piece's last
// byte, and buys the guarantee above plus a cache fill for the next request.
//
// The edge learns which data sets have CDN, their pieces and the providers' URLs by following
// the chain's event stream with a cursor (long polls, no polling storms). It meters egress per
// payer and data set, split into hits and misses, and periodically reports it to the chain
// (ReportUsage, signed with the edge's own secp256k1 key, which must be listed in the chain's
// genesis Edges), which pays the edge for all egress and the provider for misses through the
// data set's two CDN rails at 7 USDFC/TiB each. Served totals are kept in pebble; reported
// totals are re-derived from the chain's UsageReported events, so a crash between a report and
// its bookkeeping neither loses nor double-bills bytes. Admission reserves the bytes of a
// response against the remaining fixed lockup of the rails, so nothing is served that cannot be
// billed: an exhausted payer gets 402.
//
// Billing rules: a hit bills its served bytes to the CDN rail; a verified miss bills its served
// bytes to both rails; a miss whose origin sent wrong bytes bills nothing (the client got an
// aborted transfer) and counts as a failure of that provider.
//
// Stats: for every provider, time-to-first-byte and time-to-last-byte percentiles, success
// rate and throughput from real fetches and an optional synthetic prober; Prometheus histograms
// at /metrics, JSON at /stats, and an HTML dashboard at /dashboard ranking providers by p50/p95
// time-to-first-byte and success rate with a chart over time. Requests are rate limited per
// requester (requests per second and egress bytes per second).
//
// New opens an Edge (Handler, Run, Close); Start does that and serves it on a listener in one
// call, which is how `sp devnet` embeds an edge. The chain must list the edge's address in its
// genesis Edges (CheckAuthorized tells).
package beam
