// Package pdp holds the pure mathematics of Provable Data Possession as used by the Filecoin
// Onchain Cloud: fr32 padding, the sha254 binary Merkle tree, piece commitments (commP) and
// piece CIDs, the cached upper part of a piece's tree (TreeTop), proofs of single leaves,
// challenge derivation and the sum tree that maps a data set's leaf index to a piece.
//
// Nothing here touches files, the network or the clock: callers pass bytes in and get values
// out, so every rule can be tested with tables and replayed.
//
// Vocabulary: raw bytes are the payload; padded bytes are the result of fr32 padding (127 raw
// bytes become 128 padded bytes, i.e. four 32-byte leaves whose top two bits are zero). The
// height of a tree is log2 of its leaf count; a leaf has height 0. A section is the subtree of
// 2^h leaves under one node at the layer height h.
package pdp
