// Package ipfs stores IPFS content on warmstore and serves it back: it builds UnixFS DAGs of
// files and directories into CAR pieces (BuildCAR), indexes the blocks of CAR pieces held by
// a provider (Index: block multihash → piece, offset, length, in its own pebble DB), serves
// them through boxo's trustless gateway (NewGateway: GET /ipfs/{cid} as
// application/vnd.ipld.raw or application/vnd.ipld.car), and fetches content back with every
// block verified against its CID (Fetch).
//
// Piece CIDs (multihash 0x1011) cannot pass boxo's CID checks, so pieces stay on the
// provider's own /piece route; this package only ever deals in the blocks inside them.
package ipfs
