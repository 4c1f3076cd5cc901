package chain

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"
)

// EventKind names an event.
type EventKind string

// Events the ledger emits. Followers (providers, the edge, the SDK) read them in order by Seq.
const (
	EvProviderRegistered EventKind = "ProviderRegistered"
	EvFaucet             EventKind = "Faucet"
	EvDeposit            EventKind = "Deposit"
	EvWithdraw           EventKind = "Withdraw"
	EvOperatorApproval   EventKind = "OperatorApproval"
	EvDataSetCreated     EventKind = "DataSetCreated"
	EvPiecesAdded        EventKind = "PiecesAdded"
	EvRemovalsScheduled  EventKind = "PieceRemovalsScheduled"
	EvPiecesRemoved      EventKind = "PiecesRemoved"
	EvPeriodScheduled    EventKind = "NextProvingPeriod"
	EvDataSetEmpty       EventKind = "DataSetEmpty"
	EvProven             EventKind = "PossessionProven"
	EvFault              EventKind = "FaultRecord"
	EvRailSettled        EventKind = "RailSettled"
	EvOneTimePayment     EventKind = "OneTimePayment"
	EvServiceTerminated  EventKind = "ServiceTerminated"
	EvDataSetDeleted     EventKind = "DataSetDeleted"
	EvUsageReported      EventKind = "UsageReported"
	EvCDNToppedUp        EventKind = "CDNToppedUp"
)

// Challenge is one challenged leaf: the piece and the leaf offset inside it.
type Challenge struct {
	PieceID uint64 `json:"pieceId"`
	Offset  uint64 `json:"offset"`
}

// Event is one thing that happened. Fields not relevant to a kind are left zero and omitted.
type Event struct {
	Seq   uint64         `json:"seq"`
	Epoch abi.ChainEpoch `json:"epoch"`
	Kind  EventKind      `json:"kind"`
	Tx    common.Hash    `json:"tx"`

	DataSetID      uint64           `json:"dataSetId,omitempty"`
	RailID         uint64           `json:"railId,omitempty"`
	Address        *common.Address  `json:"address,omitempty"` // provider, payer, depositor… by kind
	PieceIDs       []uint64         `json:"pieceIds,omitempty"`
	Period         *uint64          `json:"period,omitempty"`
	Deadline       abi.ChainEpoch   `json:"deadline,omitempty"`
	ChallengeEpoch abi.ChainEpoch   `json:"challengeEpoch,omitempty"`
	LeafCount      uint64           `json:"leafCount,omitempty"`
	Challenges     []Challenge      `json:"challenges,omitempty"`
	Amount         *abi.TokenAmount `json:"amount,omitempty"`
	NetPayee       *abi.TokenAmount `json:"netPayee,omitempty"`
	NetworkFee     *abi.TokenAmount `json:"networkFee,omitempty"`
	Withheld       *abi.TokenAmount `json:"withheld,omitempty"`
	SettledUpTo    abi.ChainEpoch   `json:"settledUpTo,omitempty"`
	EndEpoch       abi.ChainEpoch   `json:"endEpoch,omitempty"`
	Bytes          uint64           `json:"bytes,omitempty"`
	CacheMissBytes uint64           `json:"cacheMissBytes,omitempty"`
	Note           string           `json:"note,omitempty"`
}

func addrp(a common.Address) *common.Address { return &a }
func amtp(a abi.TokenAmount) *abi.TokenAmount {
	return &a
}
func u64p(v uint64) *uint64 { return &v }
