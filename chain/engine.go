package chain

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
)

// Engine is the ledger's rule engine: the verifier (PDPVerifier), the warm-storage service
// (FWSS), Filecoin Pay and the provider registry as one pure state machine. Apply takes the
// committed state, one signed transaction, the current epoch and the beacon, and returns the
// transaction's write set and events; it does no I/O and reads no clock, so replaying the
// transaction log with the recorded epochs reproduces the state exactly.
type Engine struct {
	cfg    Config
	domain eip712.Domain
	edges  map[common.Address]bool
}

// NewEngine returns the engine for a validated configuration.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, domain: eip712.Domain{ChainID: cfg.ChainID, VerifyingContract: cfg.WarmStorage}, edges: map[common.Address]bool{}}
	for _, a := range cfg.Edges {
		e.edges[a] = true
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Domain returns the EIP-712 domain client authorizations must be signed under.
func (e *Engine) Domain() eip712.Domain { return e.domain }

// applyCtx is one transaction in progress.
type applyCtx struct {
	e      *Engine
	st     *Txn
	now    abi.ChainEpoch
	beacon Beacon
	from   common.Address
	hash   common.Hash
	events []Event
	pay    *payments.Ledger
	// dsCache holds data sets decoded for the validator, which settlement asks once per rate
	// segment; putDataSet drops an entry when the engine writes the data set.
	dsCache map[uint64]*DataSet
}

func (c *applyCtx) emit(ev Event) {
	ev.Epoch = c.now
	ev.Tx = c.hash
	c.events = append(c.events, ev)
}

// Apply validates and executes tx at epoch now. On success it returns the write set (commit it
// to make the transaction take effect) and the events; on failure it returns an error wrapping
// one of the package's sentinel errors and nothing may be committed.
func (e *Engine) Apply(base Store, tx *Tx, now abi.ChainEpoch, beacon Beacon) (*Txn, []Event, error) {
	st, events, _, err := e.apply(base, tx, now, beacon)
	return st, events, err
}

// apply is Apply that also returns the transaction's hash, so the ledger's receipt does not
// hash the body again: the signing hash is computed once and serves both the sender recovery
// and the transaction hash.
func (e *Engine) apply(base Store, tx *Tx, now abi.ChainEpoch, beacon Beacon) (*Txn, []Event, common.Hash, error) {
	if tx == nil {
		return nil, nil, common.Hash{}, fmt.Errorf("%w: nil transaction", ErrMalformed)
	}
	if now < 0 {
		return nil, nil, common.Hash{}, fmt.Errorf("%w: negative epoch %d", ErrInvalidArgument, now)
	}
	signing := tx.SigningHash(e.cfg.ChainID)
	from, err := tx.senderOf(signing)
	if err != nil {
		return nil, nil, common.Hash{}, err
	}
	st := NewTxn(base)
	want, err := getU64(st, keyNonce(from))
	if err != nil {
		return nil, nil, common.Hash{}, err
	}
	if tx.Nonce != want {
		return nil, nil, common.Hash{}, fmt.Errorf("%w: %s sent nonce %d, next is %d", ErrBadNonce, from.Hex(), tx.Nonce, want)
	}
	c := &applyCtx{e: e, st: st, now: now, beacon: beacon, from: from, hash: tx.hashOf(signing), dsCache: map[uint64]*DataSet{}}
	c.pay = payments.NewLedger(payState{st}, payments.ValidatorMap{e.cfg.WarmStorage: &fwssValidator{c: c}})
	if err := c.dispatch(tx); err != nil {
		return nil, nil, common.Hash{}, fmt.Errorf("%s from %s: %w", tx.Kind, from.Hex(), err)
	}
	putU64(st, keyNonce(from), want+1)
	return st, c.events, c.hash, nil
}

func (c *applyCtx) dispatch(tx *Tx) error {
	switch tx.Kind {
	case TxRegisterProvider:
		return runBody(tx.Body, c.registerProvider)
	case TxFaucet:
		return runBody(tx.Body, c.faucet)
	case TxDeposit:
		return runBody(tx.Body, c.deposit)
	case TxWithdraw:
		return runBody(tx.Body, c.withdraw)
	case TxSetOperatorApproval:
		return runBody(tx.Body, c.setOperatorApproval)
	case TxCreateDataSet:
		return runBody(tx.Body, c.createDataSet)
	case TxAddPieces:
		return runBody(tx.Body, c.addPieces)
	case TxSchedulePieceRemovals:
		return runBody(tx.Body, c.scheduleRemovals)
	case TxNextProvingPeriod:
		return runBody(tx.Body, c.nextProvingPeriod)
	case TxProvePossession:
		return runBody(tx.Body, c.provePossession)
	case TxRecordFaults:
		return runBody(tx.Body, c.recordFaultsTx)
	case TxSettleRail:
		return runBody(tx.Body, c.settleRail)
	case TxTerminateService:
		return runBody(tx.Body, c.terminateService)
	case TxDeleteDataSet:
		return runBody(tx.Body, c.deleteDataSet)
	case TxReportUsage:
		return runBody(tx.Body, c.reportUsage)
	case TxTopUpCDN:
		return runBody(tx.Body, c.topUpCDN)
	}
	return fmt.Errorf("%w: %q", ErrUnknownKind, tx.Kind)
}

// runBody decodes a transaction body strictly into the rule's body type and runs the rule.
func runBody[B any](raw json.RawMessage, rule func(B) error) error {
	var b B
	if err := decodeBody(raw, &b); err != nil {
		return err
	}
	return rule(b)
}

// payErr wraps a payments refusal so it maps to ErrPayments (or ErrInsufficientFunds) while
// keeping the rule for errors.Is.
func payErr(err error) error {
	if err == nil {
		return nil
	}
	var se *payments.StateError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %w", ErrInternal, err)
	}
	if errors.Is(err, payments.ErrInsufficientFunds) || errors.Is(err, payments.ErrWithdrawExceedsAvailable) {
		return fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
	}
	return fmt.Errorf("%w: %w", ErrPayments, err)
}

func validAmount(a abi.TokenAmount) bool { return a.Int != nil && a.Sign() >= 0 }

// --- registry, wallet, accounts ----------------------------------------------------------

func (c *applyCtx) registerProvider(b RegisterProviderBody) error {
	if err := checkServiceURL(b.ServiceURL); err != nil {
		return err
	}
	if len(b.Name) > 128 {
		return fmt.Errorf("%w: provider name is %d bytes, max 128", ErrInvalidArgument, len(b.Name))
	}
	payee := b.Payee
	if payee == (common.Address{}) {
		payee = c.from
	}
	var p Provider
	ok, err := getJSON(c.st, keyProvider(c.from), &p)
	if err != nil {
		return err
	}
	if !ok {
		id, err := nextID(c.st, "provider")
		if err != nil {
			return err
		}
		p = Provider{ID: id, Address: c.from, Registered: c.now}
	}
	p.Payee, p.ServiceURL, p.Name = payee, b.ServiceURL, b.Name
	if err := putJSON(c.st, keyProvider(c.from), p); err != nil {
		return err
	}
	c.emit(Event{Kind: EvProviderRegistered, Address: addrp(c.from), Note: p.ServiceURL})
	return nil
}

func (c *applyCtx) provider(a common.Address) (*Provider, error) {
	var p Provider
	ok, err := getJSON(c.st, keyProvider(a), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a registered provider", ErrUnauthorized, a.Hex())
	}
	return &p, nil
}

func (c *applyCtx) faucet(b FaucetBody) error {
	if !c.e.cfg.Faucet {
		return ErrFaucetDisabled
	}
	if !validAmount(b.Amount) || b.Amount.IsZero() {
		return fmt.Errorf("%w: faucet amount must be positive", ErrInvalidArgument)
	}
	if b.Amount.GreaterThan(c.e.cfg.FaucetLimit) {
		return fmt.Errorf("%w: faucet amount %s exceeds the limit %s", ErrInvalidArgument, b.Amount, c.e.cfg.FaucetLimit)
	}
	to := b.To
	if to == (common.Address{}) {
		to = c.from
	}
	bal, err := getAmount(c.st, keyWallet(to))
	if err != nil {
		return err
	}
	if err := putAmount(c.st, keyWallet(to), big.Add(bal, b.Amount)); err != nil {
		return err
	}
	c.emit(Event{Kind: EvFaucet, Address: addrp(to), Amount: amtp(b.Amount)})
	return nil
}

func (c *applyCtx) deposit(b DepositBody) error {
	if !validAmount(b.Amount) || b.Amount.IsZero() {
		return fmt.Errorf("%w: deposit amount must be positive", ErrInvalidArgument)
	}
	to := b.To
	if to == (common.Address{}) {
		to = c.from
	}
	bal, err := getAmount(c.st, keyWallet(c.from))
	if err != nil {
		return err
	}
	if bal.LessThan(b.Amount) {
		return fmt.Errorf("%w: wallet of %s holds %s, deposit %s", ErrInsufficientFunds, c.from.Hex(), bal, b.Amount)
	}
	if err := putAmount(c.st, keyWallet(c.from), big.Sub(bal, b.Amount)); err != nil {
		return err
	}
	if err := payErr(c.pay.Deposit(c.e.cfg.Token, to, b.Amount, c.now)); err != nil {
		return err
	}
	c.emit(Event{Kind: EvDeposit, Address: addrp(to), Amount: amtp(b.Amount)})
	return nil
}

func (c *applyCtx) withdraw(b WithdrawBody) error {
	if !validAmount(b.Amount) || b.Amount.IsZero() {
		return fmt.Errorf("%w: withdrawal amount must be positive", ErrInvalidArgument)
	}
	if err := payErr(c.pay.Withdraw(c.e.cfg.Token, c.from, b.Amount, c.now)); err != nil {
		return err
	}
	bal, err := getAmount(c.st, keyWallet(c.from))
	if err != nil {
		return err
	}
	if err := putAmount(c.st, keyWallet(c.from), big.Add(bal, b.Amount)); err != nil {
		return err
	}
	c.emit(Event{Kind: EvWithdraw, Address: addrp(c.from), Amount: amtp(b.Amount)})
	return nil
}

func (c *applyCtx) setOperatorApproval(b SetOperatorApprovalBody) error {
	if !validAmount(b.RateAllowance) || !validAmount(b.LockupAllowance) || b.MaxLockupPeriod < 0 {
		return fmt.Errorf("%w: allowances must be non-negative", ErrInvalidArgument)
	}
	if err := payErr(c.pay.SetOperatorApproval(c.e.cfg.Token, c.from, b.Operator, b.Approved, b.RateAllowance, b.LockupAllowance, b.MaxLockupPeriod, c.now)); err != nil {
		return err
	}
	c.emit(Event{Kind: EvOperatorApproval, Address: addrp(c.from), Note: b.Operator.Hex()})
	return nil
}

// useAuthNonce marks a client authorization nonce used, refusing a second use.
func (c *applyCtx) useAuthNonce(payer common.Address, kind string, n abi.TokenAmount) error {
	if !validAmount(n) || n.BitLen() > 256 {
		return fmt.Errorf("%w: %s nonce must be a uint256", ErrInvalidArgument, kind)
	}
	k := keyAuth(payer, kind, n)
	if _, ok, err := c.st.Get(k); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: %s nonce %s of %s", ErrNonceUsed, kind, n, payer.Hex())
	}
	c.st.Set(k, []byte{1})
	return nil
}

func (c *applyCtx) verifyAuth(m eip712.Message, sig []byte, payer common.Address) error {
	got, err := c.e.domain.Recover(m, sig)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if got != payer {
		return fmt.Errorf("%w: authorization signed by %s, payer is %s", ErrWrongSigner, got.Hex(), payer.Hex())
	}
	return nil
}
