package chain

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/pdp"
)

// RegisterProviderBody registers (or updates) the sender as a storage provider.
type RegisterProviderBody struct {
	Payee      common.Address `json:"payee"` // zero: the sender
	ServiceURL string         `json:"serviceUrl"`
	Name       string         `json:"name"`
}

// FaucetBody mints test tokens into To's wallet (devnet only).
type FaucetBody struct {
	To     common.Address  `json:"to"`
	Amount abi.TokenAmount `json:"amount"`
}

// DepositBody moves tokens from the sender's wallet into To's payments account.
type DepositBody struct {
	To     common.Address  `json:"to"`
	Amount abi.TokenAmount `json:"amount"`
}

// WithdrawBody moves available tokens from the sender's payments account to its wallet.
type WithdrawBody struct {
	Amount abi.TokenAmount `json:"amount"`
}

// SetOperatorApprovalBody sets what Operator may do with the sender's payments account.
type SetOperatorApprovalBody struct {
	Operator        common.Address  `json:"operator"`
	Approved        bool            `json:"approved"`
	RateAllowance   abi.TokenAmount `json:"rateAllowance"`
	LockupAllowance abi.TokenAmount `json:"lockupAllowance"`
	MaxLockupPeriod abi.ChainEpoch  `json:"maxLockupPeriod"`
}

// CreateDataSetBody is sent by a registered provider with the payer's signed CreateDataSet.
type CreateDataSetBody struct {
	Payer           common.Address         `json:"payer"`
	ClientDataSetID abi.TokenAmount        `json:"clientDataSetId"`
	Metadata        []eip712.MetadataEntry `json:"metadata"`
	Signature       hexutil.Bytes          `json:"signature"`
}

// AddPiecesBody is sent by the data set's provider with the payer's signed AddPieces.
type AddPiecesBody struct {
	DataSetID     uint64                   `json:"dataSetId"`
	Nonce         abi.TokenAmount          `json:"nonce"`
	Pieces        []pdp.PieceCID           `json:"pieces"`
	PieceMetadata [][]eip712.MetadataEntry `json:"pieceMetadata"`
	Signature     hexutil.Bytes            `json:"signature"`
}

// SchedulePieceRemovalsBody is sent by the provider with the payer's signed SchedulePieceRemovals.
type SchedulePieceRemovalsBody struct {
	DataSetID uint64        `json:"dataSetId"`
	PieceIDs  []uint64      `json:"pieceIds"`
	Signature hexutil.Bytes `json:"signature"`
}

// NextProvingPeriodBody schedules the next proving period's challenge epoch.
type NextProvingPeriodBody struct {
	DataSetID      uint64         `json:"dataSetId"`
	ChallengeEpoch abi.ChainEpoch `json:"challengeEpoch"`
}

// ProvePossessionBody answers the current period's challenges, one proof per challenge in
// challenge order.
type ProvePossessionBody struct {
	DataSetID uint64      `json:"dataSetId"`
	Proofs    []pdp.Proof `json:"proofs"`
}

// RecordFaultsBody asks the ledger to record every period of a data set whose deadline passed
// without a proof (anyone may send it).
type RecordFaultsBody struct {
	DataSetID uint64 `json:"dataSetId"`
}

// SettleRailBody settles a rail up to UntilEpoch; 0 means as far as the rules allow now.
type SettleRailBody struct {
	RailID     uint64         `json:"railId"`
	UntilEpoch abi.ChainEpoch `json:"untilEpoch"`
}

// TerminateServiceBody ends a data set's storage service. Sent by the payer or the provider;
// with the payer's signed TerminateService (sent by the provider) it ends immediately.
type TerminateServiceBody struct {
	DataSetID uint64        `json:"dataSetId"`
	Signature hexutil.Bytes `json:"signature,omitempty"`
}

// DeleteDataSetBody deletes a terminated data set whose rail is settled to its end.
type DeleteDataSetBody struct {
	DataSetID uint64 `json:"dataSetId"`
}

// ReportUsageBody is an edge's metered egress for a data set since its last report.
type ReportUsageBody struct {
	DataSetID      uint64 `json:"dataSetId"`
	CDNBytes       uint64 `json:"cdnBytes"`
	CacheMissBytes uint64 `json:"cacheMissBytes"`
}

// TopUpCDNBody raises the fixed lockups of a data set's CDN rails (sent by the payer).
type TopUpCDNBody struct {
	DataSetID       uint64          `json:"dataSetId"`
	CDNAmount       abi.TokenAmount `json:"cdnAmount"`
	CacheMissAmount abi.TokenAmount `json:"cacheMissAmount"`
}
