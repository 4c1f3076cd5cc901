package sdk

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/chain/extradata"
)

// DataSetInfo is one of the payer's data sets with its pieces and proving state.
type DataSetInfo struct {
	chain.DataSet
	ProviderName string        `json:"providerName"`
	ServiceURL   string        `json:"serviceUrl"`
	Pieces       []chain.Piece `json:"pieces,omitempty"`
	// Rail is the PDP payment rail.
	Rail *chain.RailInfo `json:"rail,omitempty"`
	// Proving is a plain-words summary: "not started", "proven this period", "awaiting proof",
	// "terminated".
	Proving string `json:"proving"`
}

// DataSets lists the payer's data sets (without pieces).
func (c *Client) DataSets(ctx context.Context) ([]DataSetInfo, error) {
	sets, err := c.chain.DataSets(ctx, common.Address{}, c.address)
	if err != nil {
		return nil, fmt.Errorf("sdk: list data sets: %w", err)
	}
	provs, err := c.chain.Providers(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: list providers: %w", err)
	}
	byAddr := map[common.Address]chain.Provider{}
	for _, p := range provs {
		byAddr[p.Address] = p
	}
	out := make([]DataSetInfo, len(sets))
	for i, ds := range sets {
		p := byAddr[ds.Provider]
		out[i] = DataSetInfo{DataSet: ds, ProviderName: p.Name, ServiceURL: p.ServiceURL, Proving: provingState(&ds)}
	}
	return out, nil
}

func provingState(ds *chain.DataSet) string {
	switch {
	case ds.EndEpoch != 0:
		return fmt.Sprintf("terminated (service ends at epoch %d)", ds.EndEpoch)
	case ds.Activation == 0 || ds.NextChallengeEpoch == 0:
		return "not started"
	case ds.ProvenThisPeriod:
		return "proven this period"
	default:
		return fmt.Sprintf("awaiting proof (challenge epoch %d, deadline %d)", ds.NextChallengeEpoch, ds.Deadline)
	}
}

// DataSet shows one data set: pieces, proving status, faults and its rail. It fails with
// ErrNotFound when the data set does not exist or is not the payer's.
func (c *Client) DataSet(ctx context.Context, id uint64) (*DataSetInfo, error) {
	ds, err := c.chain.DataSet(ctx, id)
	if err != nil {
		if errors.Is(err, chain.ErrNotFound) {
			return nil, fmt.Errorf("%w: data set %d", ErrNotFound, id)
		}
		return nil, fmt.Errorf("sdk: read data set %d: %w", id, err)
	}
	if ds.Payer != c.address {
		return nil, fmt.Errorf("%w: data set %d is paid by %s, not by this wallet", ErrNotFound, id, ds.Payer.Hex())
	}
	info := &DataSetInfo{DataSet: *ds, Proving: provingState(ds)}
	if p, err := c.chain.Provider(ctx, ds.Provider); err == nil {
		info.ProviderName, info.ServiceURL = p.Name, p.ServiceURL
	}
	if info.Pieces, err = c.chain.Pieces(ctx, id); err != nil {
		return nil, fmt.Errorf("sdk: list pieces of data set %d: %w", id, err)
	}
	if info.Rail, err = c.chain.Rail(ctx, ds.PDPRail); err != nil {
		return nil, fmt.Errorf("sdk: read rail %d: %w", ds.PDPRail, err)
	}
	return info, nil
}

type deletePiecesRequest struct {
	ExtraData hexutil.Bytes `json:"extraData"`
	PieceIDs  []uint64      `json:"pieceIds"`
}

// RemovePieces schedules the removal of pieces from a data set: the payer signs
// SchedulePieceRemovals and the data set's provider submits it; pieces leave the data set (and
// stop being paid for) at the next proving period.
func (c *Client) RemovePieces(ctx context.Context, dataSetID uint64, pieceIDs []uint64) (string, error) {
	if len(pieceIDs) == 0 {
		return "", fmt.Errorf("%w: no piece ids given", ErrNotFound)
	}
	info, err := c.DataSet(ctx, dataSetID)
	if err != nil {
		return "", err
	}
	live := map[uint64]bool{}
	for _, p := range info.Pieces {
		live[p.ID] = !p.Removed
	}
	ids := make([]*big.Int, len(pieceIDs))
	for i, id := range pieceIDs {
		if !live[id] {
			return "", fmt.Errorf("%w: piece %d is not a live piece of data set %d", ErrNotFound, id, dataSetID)
		}
		ids[i] = new(big.Int).SetUint64(id)
	}
	sig, err := c.domain.Sign(c.key, eip712.SchedulePieceRemovals{ClientDataSetID: info.ClientDataSetID.Int, PieceIDs: ids})
	if err != nil {
		return "", fmt.Errorf("sdk: sign SchedulePieceRemovals: %w", err)
	}
	extra, err := extradata.EncodeSignature(sig)
	if err != nil {
		return "", err
	}
	if info.ServiceURL == "" {
		return "", fmt.Errorf("%w: provider of data set %d has no service URL", ErrNoProvider, dataSetID)
	}
	u := fmt.Sprintf("%s/pdp/data-sets/%d/pieces/%d", info.ServiceURL, dataSetID, pieceIDs[0])
	_, b, err := c.call(ctx, http.MethodDelete, u, "remove pieces", deletePiecesRequest{ExtraData: extra, PieceIDs: pieceIDs}, http.StatusOK, http.StatusAccepted, http.StatusNoContent)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Terminate ends the storage service of a data set. The payer sends TerminateService to the
// chain itself (no provider involved): the rail then runs to the end of its lockup period and
// the provider stops being paid after it.
func (c *Client) Terminate(ctx context.Context, dataSetID uint64) (*chain.Receipt, abi.ChainEpoch, error) {
	if _, err := c.DataSet(ctx, dataSetID); err != nil {
		return nil, 0, err
	}
	r, err := c.chain.TerminateService(ctx, c.key, chain.TerminateServiceBody{DataSetID: dataSetID})
	if err != nil {
		return nil, 0, fmt.Errorf("sdk: terminate data set %d: %w", dataSetID, err)
	}
	ds, err := c.chain.DataSet(ctx, dataSetID)
	if err != nil {
		return r, 0, nil
	}
	return r, ds.EndEpoch, nil
}
