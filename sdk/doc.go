// Package sdk is the Go client of warmstore: it stores pieces on providers, verifies what it
// downloads, and moves the payer's money, speaking the provider's PDP HTTP API (the one the
// Synapse SDK speaks), the chain's API and the beam edge.
//
// # Uploads
//
// Client.Upload reads its input once, computing the piece CID while streaming the bytes to the
// first provider (POST /pdp/piece/uploads, PUT, finalize). Further copies (two by default, on
// distinct providers) are pulled provider-to-provider (POST /pdp/piece/pull), or uploaded again
// when a pull fails and the input can be rewound. Every copy is then committed: the payer signs
// CreateDataSet+AddPieces (a new data set) or AddPieces (a reused one, matched by the "source"
// and "withCDN" metadata) under the warm-storage EIP-712 domain, the provider submits, and the
// SDK waits until the chain lists the piece. The result reports each copy; a partial upload is
// not an error.
//
// # Downloads
//
// Client.Download and Client.DownloadRange never hand the caller an unverified byte. Bytes are
// fetched in windows; each window is hashed (with two boundary leaf proofs from
// GET /pdp/piece/{cid}/proof, see RangeProof) up to the piece root before it is written. A copy
// that sends a wrong byte, truncates, stalls or does not have the piece is dropped and the
// window fetched from the next one. Any byte range is verified this way, not just whole pieces.
//
// # Payments and data sets
//
// Deposit, Approve, Status, Withdraw and Settle wrap the payments ledger; DataSets, DataSet,
// RemovePieces and Terminate manage the payer's data sets. Upload checks funds before it sends
// a byte and fails with *InsufficientFundsError saying how much to deposit.
package sdk
