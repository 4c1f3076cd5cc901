package chain

import (
	stdbig "math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

// Helpers that build the exact EIP-712 messages the ledger verifies, so clients (the SDK) and
// the ledger cannot disagree about, e.g., which CID encoding a piece is signed as.

// CreateDataSetAuthorization is what a payer signs to let payee's provider create a data set.
func CreateDataSetAuthorization(clientDataSetID *stdbig.Int, payee common.Address, metadata []eip712.MetadataEntry) eip712.CreateDataSet {
	return eip712.CreateDataSet{ClientDataSetID: clientDataSetID, Payee: payee, Metadata: metadata}
}

// AddPiecesAuthorization is what a payer signs to add pieces (signed as binary piece CIDs v2)
// to the data set it created with clientDataSetID. metadata may be nil (no metadata).
func AddPiecesAuthorization(clientDataSetID, nonce *stdbig.Int, pieces []pdp.PieceCID, metadata [][]eip712.MetadataEntry) eip712.AddPieces {
	data := make([][]byte, len(pieces))
	for i, p := range pieces {
		data[i] = p.CID().Bytes()
	}
	if metadata == nil {
		metadata = make([][]eip712.MetadataEntry, len(pieces))
	}
	return eip712.AddPieces{ClientDataSetID: clientDataSetID, Nonce: nonce, PieceData: data, PieceMetadata: metadata}
}

// SchedulePieceRemovalsAuthorization is what a payer signs to remove pieces.
func SchedulePieceRemovalsAuthorization(clientDataSetID *stdbig.Int, pieceIDs []uint64) eip712.SchedulePieceRemovals {
	return eip712.SchedulePieceRemovals{ClientDataSetID: clientDataSetID, PieceIDs: toStdInts(pieceIDs)}
}

// TerminateServiceAuthorization is what a payer signs to end a data set's service at once.
func TerminateServiceAuthorization(dataSetID uint64) eip712.TerminateService {
	return eip712.TerminateService{DataSetID: new(stdbig.Int).SetUint64(dataSetID)}
}

// NextChallengeEpoch is the challenge epoch a provider should pass to NextProvingPeriod at
// epoch now: the start of the next period's challenge window (or later, to respect the
// challenge finality), following the same deadline rules the ledger applies. ok is false when
// the next period cannot be scheduled yet (the current one is already scheduled).
func (c Config) NextChallengeEpoch(ds *DataSet, now abi.ChainEpoch) (epoch abi.ChainEpoch, ok bool) {
	m, w := c.ProvingPeriod, c.ChallengeWindow
	var d abi.ChainEpoch
	switch {
	case ds.Deadline == 0 && ds.Activation == 0:
		d = now + m
	case ds.Deadline == 0:
		d = ds.Activation + ((now+m-ds.Activation+m-1)/m)*m
	case now <= ds.Deadline-m:
		return 0, false
	default:
		skipped := abi.ChainEpoch(0)
		if now > ds.Deadline {
			skipped = (now - ds.Deadline - 1) / m
		}
		d = ds.Deadline + m*(skipped+1)
	}
	e := max(d-w, now+c.ChallengeFinality)
	if e > d {
		return 0, false
	}
	return e, true
}

// Config returns the ledger configuration an Info describes (for NextChallengeEpoch and the
// EIP-712 domain on the client side).
func (in *Info) Config() Config {
	return Config{ChainID: in.ChainID, WarmStorage: in.WarmStorage, Token: in.Token, FilBeam: in.FilBeam, Edges: in.Edges,
		ProvingPeriod: in.ProvingPeriod, ChallengeWindow: in.ChallengeWindow, ChallengeFinality: in.ChallengeFinality, Faucet: in.Faucet}
}
