package chain

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/filecoin-project/go-state-types/abi"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
)

// APIError is a refusal returned by the server. It unwraps to the sentinel error named by
// its code, so errors.Is(err, chain.ErrBadNonce) works across the wire.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Rule is the payments rule behind a "payments" or "insufficient_funds" refusal.
	Rule payments.Rule
}

func (e *APIError) Error() string {
	return fmt.Sprintf("chain: %s (%d %s)", e.Message, e.Status, e.Code)
}

// Unwrap returns the sentinel error of the code and, when present, the payments rule, so
// errors.Is(err, payments.ErrNotFullySettled) works across the wire too.
func (e *APIError) Unwrap() []error {
	sentinel := ErrInternal
	for _, c := range errorCodes {
		if c.code == e.Code {
			sentinel = c.err
		}
	}
	if e.Rule != "" {
		return []error{sentinel, e.Rule}
	}
	return []error{sentinel}
}

// Client talks to a chain server. It is safe for concurrent use; transactions of one key are
// given consecutive nonces.
type Client struct {
	base string
	hc   *http.Client

	mu     sync.Mutex
	info   *Info
	nonces map[common.Address]uint64
	locks  map[common.Address]*sync.Mutex
}

// NewClient returns a client for the server at baseURL (e.g. "http://127.0.0.1:7000").
// hc may be nil (http.DefaultClient).
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, nonces: map[common.Address]uint64{}, locks: map[common.Address]*sync.Mutex{}}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("chain: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("chain: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("chain: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "internal", Message: strings.TrimSpace(string(raw))}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error, Rule: payments.Rule(eb.Rule)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("chain: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Info returns (and caches) the ledger's description; Head is fresh on every call.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var in Info
	if err := c.do(ctx, http.MethodGet, "/info", nil, &in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.info = &in
	c.mu.Unlock()
	return &in, nil
}

func (c *Client) cachedInfo(ctx context.Context) (*Info, error) {
	c.mu.Lock()
	in := c.info
	c.mu.Unlock()
	if in != nil {
		return in, nil
	}
	return c.Info(ctx)
}

// Domain returns the EIP-712 domain clients sign authorizations under.
func (c *Client) Domain(ctx context.Context) (eip712.Domain, error) {
	in, err := c.cachedInfo(ctx)
	if err != nil {
		return eip712.Domain{}, err
	}
	return eip712.Domain{ChainID: in.ChainID, VerifyingContract: in.WarmStorage}, nil
}

// Head returns the current epoch and sequence numbers.
func (c *Client) Head(ctx context.Context) (Head, error) {
	var h Head
	err := c.do(ctx, http.MethodGet, "/head", nil, &h)
	return h, err
}

// StateHash returns the ledger's canonical state hash.
func (c *Client) StateHash(ctx context.Context) (common.Hash, error) {
	var out struct {
		StateHash common.Hash `json:"stateHash"`
	}
	err := c.do(ctx, http.MethodGet, "/state/hash", nil, &out)
	return out.StateHash, err
}

// Nonce returns the next transaction nonce of a sender according to the server.
func (c *Client) Nonce(ctx context.Context, a common.Address) (uint64, error) {
	var out struct {
		Nonce uint64 `json:"nonce"`
	}
	err := c.do(ctx, http.MethodGet, "/nonce/"+a.Hex(), nil, &out)
	return out.Nonce, err
}

// SubmitTx posts an already signed transaction.
func (c *Client) SubmitTx(ctx context.Context, tx *Tx) (*Receipt, error) {
	var rc Receipt
	if err := c.do(ctx, http.MethodPost, "/tx", tx, &rc); err != nil {
		return nil, err
	}
	return &rc, nil
}

// Send signs body as a transaction of kind from key with the sender's next nonce and submits
// it. Transactions of one key are serialized; after a nonce conflict (another process used the
// key) the nonce is refetched and the transaction re-signed once.
func (c *Client) Send(ctx context.Context, key *ecdsa.PrivateKey, kind TxKind, body any) (*Receipt, error) {
	in, err := c.cachedInfo(ctx)
	if err != nil {
		return nil, err
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	c.mu.Lock()
	lk := c.locks[from]
	if lk == nil {
		lk = &sync.Mutex{}
		c.locks[from] = lk
	}
	c.mu.Unlock()
	lk.Lock()
	defer lk.Unlock()
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		n, known := c.nonces[from]
		c.mu.Unlock()
		if !known {
			if n, err = c.Nonce(ctx, from); err != nil {
				return nil, err
			}
		}
		tx, err := NewTx(key, in.ChainID, kind, n, body)
		if err != nil {
			return nil, err
		}
		rc, err := c.SubmitTx(ctx, tx)
		c.mu.Lock()
		switch {
		case err == nil:
			c.nonces[from] = n + 1
		case errors.Is(err, ErrBadNonce):
			delete(c.nonces, from)
		default:
			c.nonces[from] = n // a refused transaction does not spend its nonce
		}
		c.mu.Unlock()
		if err != nil && errors.Is(err, ErrBadNonce) && attempt == 0 {
			continue
		}
		return rc, err
	}
}

// Typed transactions. Each signs with key and returns the receipt (its events included).

// RegisterProvider registers key's address as a provider.
func (c *Client) RegisterProvider(ctx context.Context, key *ecdsa.PrivateKey, b RegisterProviderBody) (*Receipt, error) {
	return c.Send(ctx, key, TxRegisterProvider, b)
}

// Faucet mints devnet tokens.
func (c *Client) Faucet(ctx context.Context, key *ecdsa.PrivateKey, b FaucetBody) (*Receipt, error) {
	return c.Send(ctx, key, TxFaucet, b)
}

// Deposit moves tokens from key's wallet into a payments account.
func (c *Client) Deposit(ctx context.Context, key *ecdsa.PrivateKey, b DepositBody) (*Receipt, error) {
	return c.Send(ctx, key, TxDeposit, b)
}

// Withdraw moves available payments funds back to key's wallet.
func (c *Client) Withdraw(ctx context.Context, key *ecdsa.PrivateKey, b WithdrawBody) (*Receipt, error) {
	return c.Send(ctx, key, TxWithdraw, b)
}

// SetOperatorApproval sets an operator's allowances on key's account.
func (c *Client) SetOperatorApproval(ctx context.Context, key *ecdsa.PrivateKey, b SetOperatorApprovalBody) (*Receipt, error) {
	return c.Send(ctx, key, TxSetOperatorApproval, b)
}

// CreateDataSet creates a data set (key is the provider's; the body carries the payer's signature).
func (c *Client) CreateDataSet(ctx context.Context, key *ecdsa.PrivateKey, b CreateDataSetBody) (*Receipt, error) {
	return c.Send(ctx, key, TxCreateDataSet, b)
}

// AddPieces adds pieces to a data set.
func (c *Client) AddPieces(ctx context.Context, key *ecdsa.PrivateKey, b AddPiecesBody) (*Receipt, error) {
	return c.Send(ctx, key, TxAddPieces, b)
}

// SchedulePieceRemovals schedules piece removals for the next period boundary.
func (c *Client) SchedulePieceRemovals(ctx context.Context, key *ecdsa.PrivateKey, b SchedulePieceRemovalsBody) (*Receipt, error) {
	return c.Send(ctx, key, TxSchedulePieceRemovals, b)
}

// NextProvingPeriod schedules the next challenge epoch.
func (c *Client) NextProvingPeriod(ctx context.Context, key *ecdsa.PrivateKey, b NextProvingPeriodBody) (*Receipt, error) {
	return c.Send(ctx, key, TxNextProvingPeriod, b)
}

// ProvePossession submits the current period's proofs.
func (c *Client) ProvePossession(ctx context.Context, key *ecdsa.PrivateKey, b ProvePossessionBody) (*Receipt, error) {
	return c.Send(ctx, key, TxProvePossession, b)
}

// RecordFaults records a data set's missed periods.
func (c *Client) RecordFaults(ctx context.Context, key *ecdsa.PrivateKey, b RecordFaultsBody) (*Receipt, error) {
	return c.Send(ctx, key, TxRecordFaults, b)
}

// SettleRail settles a rail (UntilEpoch 0: as far as possible now).
func (c *Client) SettleRail(ctx context.Context, key *ecdsa.PrivateKey, b SettleRailBody) (*Receipt, error) {
	return c.Send(ctx, key, TxSettleRail, b)
}

// TerminateService ends a data set's service.
func (c *Client) TerminateService(ctx context.Context, key *ecdsa.PrivateKey, b TerminateServiceBody) (*Receipt, error) {
	return c.Send(ctx, key, TxTerminateService, b)
}

// DeleteDataSet deletes a terminated data set.
func (c *Client) DeleteDataSet(ctx context.Context, key *ecdsa.PrivateKey, b DeleteDataSetBody) (*Receipt, error) {
	return c.Send(ctx, key, TxDeleteDataSet, b)
}

// ReportUsage bills CDN egress (key must be an authorized edge).
func (c *Client) ReportUsage(ctx context.Context, key *ecdsa.PrivateKey, b ReportUsageBody) (*Receipt, error) {
	return c.Send(ctx, key, TxReportUsage, b)
}

// TopUpCDN raises a data set's CDN lockups (key is the payer's).
func (c *Client) TopUpCDN(ctx context.Context, key *ecdsa.PrivateKey, b TopUpCDNBody) (*Receipt, error) {
	return c.Send(ctx, key, TxTopUpCDN, b)
}

// Reads.

// Providers lists registered providers.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	var out []Provider
	err := c.do(ctx, http.MethodGet, "/providers", nil, &out)
	return out, err
}

// Provider returns one provider.
func (c *Client) Provider(ctx context.Context, a common.Address) (*Provider, error) {
	var out Provider
	if err := c.do(ctx, http.MethodGet, "/providers/"+a.Hex(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DataSets lists live data sets, filtered by provider and/or payer when non-zero.
func (c *Client) DataSets(ctx context.Context, provider, payer common.Address) ([]DataSet, error) {
	q := url.Values{}
	if provider != (common.Address{}) {
		q.Set("provider", provider.Hex())
	}
	if payer != (common.Address{}) {
		q.Set("payer", payer.Hex())
	}
	var out []DataSet
	err := c.do(ctx, http.MethodGet, "/datasets?"+q.Encode(), nil, &out)
	return out, err
}

// DataSet returns one data set.
func (c *Client) DataSet(ctx context.Context, id uint64) (*DataSet, error) {
	var out DataSet
	if err := c.do(ctx, http.MethodGet, "/datasets/"+strconv.FormatUint(id, 10), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pieces lists a data set's pieces.
func (c *Client) Pieces(ctx context.Context, id uint64) ([]Piece, error) {
	var out []Piece
	err := c.do(ctx, http.MethodGet, "/datasets/"+strconv.FormatUint(id, 10)+"/pieces", nil, &out)
	return out, err
}

// Challenges returns the current period's challenges (ErrFutureEpoch before the challenge epoch).
func (c *Client) Challenges(ctx context.Context, id uint64) (*ChallengeSet, error) {
	var out ChallengeSet
	if err := c.do(ctx, http.MethodGet, "/datasets/"+strconv.FormatUint(id, 10)+"/challenges", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IsProven reports whether period n of a data set was proven.
func (c *Client) IsProven(ctx context.Context, id, n uint64) (bool, error) {
	var out struct {
		Proven bool `json:"proven"`
	}
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/datasets/%d/proven/%d", id, n), nil, &out)
	return out.Proven, err
}

// Account returns an owner's wallet and payments account.
func (c *Client) Account(ctx context.Context, a common.Address) (*Account, error) {
	var out Account
	if err := c.do(ctx, http.MethodGet, "/accounts/"+a.Hex(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Approval returns a client's approval of an operator.
func (c *Client) Approval(ctx context.Context, client, operator common.Address) (*payments.Approval, error) {
	var out payments.Approval
	if err := c.do(ctx, http.MethodGet, "/approvals/"+client.Hex()+"/"+operator.Hex(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rail returns a rail and its queued rate changes.
func (c *Client) Rail(ctx context.Context, id uint64) (*RailInfo, error) {
	var out RailInfo
	if err := c.do(ctx, http.MethodGet, "/rails/"+strconv.FormatUint(id, 10), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Randomness returns the beacon value of an epoch that has begun.
func (c *Client) Randomness(ctx context.Context, e abi.ChainEpoch) (common.Hash, error) {
	var out struct {
		Randomness common.Hash `json:"randomness"`
	}
	err := c.do(ctx, http.MethodGet, "/randomness/"+strconv.FormatInt(int64(e), 10), nil, &out)
	return out.Randomness, err
}

// Events returns events with Seq > after (at most limit; 0 = server default), waiting up to
// wait for the first one.
func (c *Client) Events(ctx context.Context, after uint64, limit int, wait time.Duration) ([]Event, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var out []Event
	err := c.do(ctx, http.MethodGet, "/events?"+q.Encode(), nil, &out)
	return out, err
}

// Follow calls fn for every event after cursor, in order, long-polling for new ones, until ctx
// ends or fn returns an error. It returns the cursor of the last event handled, so a follower
// that persists it resumes without missing or repeating events.
func (c *Client) Follow(ctx context.Context, cursor uint64, fn func(Event) error) (uint64, error) {
	backoff := 100 * time.Millisecond
	for {
		evs, err := c.Events(ctx, cursor, 500, 30*time.Second)
		if ctx.Err() != nil {
			return cursor, ctx.Err()
		}
		if err != nil {
			// Server down or restarting: retry with backoff instead of a polling storm.
			select {
			case <-ctx.Done():
				return cursor, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return cursor, err
			}
			cursor = ev.Seq
		}
	}
}
