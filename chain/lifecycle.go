package chain

import (
	"errors"
	"fmt"

	"github.com/filecoin-project/go-state-types/abi"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
)

// --- settlement ------------------------------------------------------------------------------

// settleTarget is how far a rail can be settled now without hitting the open proving period:
// for a PDP rail, now if the current period is proven, else the previous period boundary.
func (c *applyCtx) settleTarget(ds *DataSet) abi.ChainEpoch {
	if ds == nil || ds.Activation == 0 || c.now <= ds.Activation {
		return c.now
	}
	m := c.e.cfg.ProvingPeriod
	n := periodOf(ds.Activation, m, c.now)
	if ok, err := isProven(c.st, ds.ID, n); err == nil && ok {
		return c.now
	}
	return deadlineOf(ds.Activation, m, n) - m
}

func (c *applyCtx) settleRail(b SettleRailBody) error {
	id := payments.RailID(b.RailID)
	rail, err := c.pay.Rail(id)
	if err != nil {
		if errors.Is(err, payments.ErrRailNotFound) {
			return fmt.Errorf("%w: rail %d", ErrNotFound, b.RailID)
		}
		return payErr(err)
	}
	if b.UntilEpoch > c.now {
		return fmt.Errorf("%w: settle to %d, now is %d", ErrFutureEpoch, b.UntilEpoch, c.now)
	}
	ds, err := (&fwssValidator{c: c}).railDataSet(id)
	if err != nil {
		return err
	}
	if ds != nil {
		// Settling past a missed deadline is a moment when the fault becomes visible.
		if err := c.recordFaults(ds, lastPassedDeadline(ds.Activation, c.e.cfg.ProvingPeriod, c.now)); err != nil {
			return err
		}
		if err := c.putDataSet(ds); err != nil {
			return err
		}
	}
	until := b.UntilEpoch
	if until == 0 {
		until = c.settleTarget(ds)
		if rail.Terminated && until > rail.EndEpoch {
			until = rail.EndEpoch
		}
		if until <= rail.SettledUpTo && !(rail.Terminated && rail.SettledUpTo >= rail.EndEpoch) {
			return nil // nothing can be settled yet
		}
	}
	_, err = c.settle(ds, id, until)
	return err
}

// settle settles rail up to until and emits the RailSettled event; ds (nil if the rail pays
// for no live data set) names the data set in the event.
func (c *applyCtx) settle(ds *DataSet, rail payments.RailID, until abi.ChainEpoch) (payments.Settlement, error) {
	s, err := c.pay.SettleRail(rail, until, c.now)
	if err != nil {
		return payments.Settlement{}, payErr(err)
	}
	c.emitSettlement(ds, s)
	return s, nil
}

func (c *applyCtx) emitSettlement(ds *DataSet, s payments.Settlement) {
	ev := Event{Kind: EvRailSettled, RailID: uint64(s.RailID), Amount: amtp(s.Gross), NetPayee: amtp(s.NetPayee),
		NetworkFee: amtp(s.NetworkFee), Withheld: amtp(s.Withheld), SettledUpTo: s.SettledUpTo, Note: s.Note}
	if ds != nil {
		ev.DataSetID = ds.ID
	}
	if s.Finalized {
		ev.Note = joinNote(ev.Note, "finalized")
	}
	c.emit(ev)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// --- termination and deletion ------------------------------------------------------------

func (c *applyCtx) terminateService(b TerminateServiceBody) error {
	ds, err := getDataSet(c.st, b.DataSetID)
	if err != nil {
		return err
	}
	if c.from != ds.Payer && c.from != ds.Provider {
		return fmt.Errorf("%w: only the payer or the provider may terminate data set %d", ErrUnauthorized, ds.ID)
	}
	if ds.EndEpoch != 0 {
		return fmt.Errorf("%w: data set %d already ends at %d", ErrTerminated, ds.ID, ds.EndEpoch)
	}
	fwss, rail := c.e.cfg.WarmStorage, payments.RailID(ds.PDPRail)
	if len(b.Signature) > 0 {
		// Consent termination: the provider carries the payer's signature; the service ends now
		// and the streaming lockup is released.
		if c.from != ds.Provider {
			return fmt.Errorf("%w: a signed termination is submitted by the provider", ErrUnauthorized)
		}
		id := big.NewIntUnsigned(ds.ID)
		if err := c.verifyAuth(eip712.TerminateService{DataSetID: id.Int}, b.Signature, ds.Payer); err != nil {
			return err
		}
		if err := c.useAuthNonce(ds.Payer, "terminate", id); err != nil {
			return err
		}
		ds.PendingFees = big.Add(ds.PendingFees, TerminateFee)
		if err := payErr(c.pay.ModifyRailLockup(fwss, rail, 0, ds.PendingFees, c.now)); err != nil {
			return err
		}
		r, err := c.pay.Rail(rail)
		if err != nil {
			return payErr(err)
		}
		p, err := c.pay.ModifyRailPayment(fwss, rail, r.PaymentRate, ds.PendingFees, c.now)
		if err != nil {
			return payErr(err)
		}
		c.emit(Event{Kind: EvOneTimePayment, DataSetID: ds.ID, RailID: ds.PDPRail, Amount: amtp(p.Gross), NetPayee: amtp(p.NetPayee), NetworkFee: amtp(p.NetworkFee)})
		ds.PendingFees, ds.Reserve = big.Zero(), big.Zero()
	} else if !ds.PendingFees.IsZero() {
		if err := c.updateStorageRate(ds); err != nil {
			return err
		}
	}
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	if err := payErr(c.pay.TerminateRail(fwss, rail, c.now)); err != nil {
		return err
	}
	ds, err = getDataSet(c.st, b.DataSetID) // the termination listener recorded the end epoch
	if err != nil {
		return err
	}
	c.emit(Event{Kind: EvServiceTerminated, DataSetID: ds.ID, RailID: ds.PDPRail, EndEpoch: ds.EndEpoch, Address: addrp(c.from)})
	return nil
}

func (c *applyCtx) deleteDataSet(b DeleteDataSetBody) error {
	ds, err := getDataSet(c.st, b.DataSetID)
	if err != nil {
		return err
	}
	inactive := c.now > ds.LastProvenEpoch+InactivityWindow
	if c.from != ds.Provider && !inactive {
		return fmt.Errorf("%w: only the provider may delete data set %d before %d epochs without a proof", ErrUnauthorized, ds.ID, InactivityWindow)
	}
	if ds.EndEpoch == 0 {
		if !inactive {
			return fmt.Errorf("%w: data set %d must be terminated before deletion (or be inactive for %d epochs)", ErrInvalidArgument, ds.ID, InactivityWindow)
		}
		return c.abandon(ds)
	}
	if c.now < ds.EndEpoch {
		return fmt.Errorf("%w: data set %d's service runs until %d", ErrTooEarly, ds.ID, ds.EndEpoch)
	}
	rail, err := c.pay.Rail(payments.RailID(ds.PDPRail))
	if err != nil {
		return payErr(err)
	}
	if !rail.Finalized {
		s, err := c.settle(ds, rail.ID, ds.EndEpoch)
		if err != nil {
			return err
		}
		if !s.Finalized {
			return fmt.Errorf("%w: PDP rail %d settled to %d, not to its end %d (wait for the last deadline)", ErrPayments, rail.ID, s.SettledUpTo, ds.EndEpoch)
		}
	}
	return c.finishDeletion(ds.ID)
}

// abandon deletes a data set nobody proved for the inactivity window without a termination
// (reference §5.4, abandonment path): the PDP rail is settled as far as the proofs allow, the
// remaining epochs are unpaid, its lockups are released if the payer is solvent, and it is
// terminated. A rail that cannot be finalized now stays terminated; its data set is gone, so
// any later settlement pays nothing.
func (c *applyCtx) abandon(ds *DataSet) error {
	fwss, id := c.e.cfg.WarmStorage, payments.RailID(ds.PDPRail)
	rail, err := c.pay.Rail(id)
	if err != nil {
		return payErr(err)
	}
	if !rail.Terminated {
		if until := c.settleTarget(ds); until > rail.SettledUpTo {
			if _, err := c.settle(ds, id, until); err != nil {
				return err
			}
		}
		// Pre-activation rules from here on: nothing more is paid.
		ds.Activation = 0
		ds.PendingFees = big.Zero()
		if err := c.putDataSet(ds); err != nil {
			return err
		}
		if info, err := c.account(ds.Payer); err == nil && info.FullySettled {
			if err := payErr(c.pay.ModifyRailLockup(fwss, id, 0, big.Zero(), c.now)); err != nil {
				return err
			}
		}
		if err := payErr(c.pay.TerminateRail(fwss, id, c.now)); err != nil {
			return err
		}
		if rail, err = c.pay.Rail(id); err != nil {
			return payErr(err)
		}
	}
	if !rail.Finalized && c.now >= rail.EndEpoch {
		if _, err := c.settle(ds, id, rail.EndEpoch); err != nil {
			return err
		}
	}
	return c.finishDeletion(ds.ID)
}

// finishDeletion ends the CDN rails and marks the data set deleted.
func (c *applyCtx) finishDeletion(dsID uint64) error {
	ds, err := getDataSet(c.st, dsID)
	if err != nil {
		return err
	}
	// CDN rails end with the data set (best effort, as in the reference: a refusal here, e.g.
	// an underfunded payer, does not block deletion).
	for _, id := range []uint64{ds.CDNRail, ds.CacheMissRail} {
		if id == 0 {
			continue
		}
		r, err := c.pay.Rail(payments.RailID(id))
		if err != nil || r.Terminated || r.Finalized {
			continue
		}
		if err := c.pay.TerminateRail(c.e.cfg.WarmStorage, r.ID, c.now); err != nil {
			var re *payments.RefusalError
			if !errors.As(err, &re) {
				return payErr(err)
			}
		}
	}
	ds, err = getDataSet(c.st, dsID)
	if err != nil {
		return err
	}
	ds.Deleted = true
	ds.NextChallengeEpoch, ds.Deadline = 0, 0
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	c.emit(Event{Kind: EvDataSetDeleted, DataSetID: ds.ID})
	return nil
}

// --- CDN -----------------------------------------------------------------------------------

func (c *applyCtx) reportUsage(b ReportUsageBody) error {
	if !c.e.edges[c.from] {
		return fmt.Errorf("%w: %s is not an authorized edge", ErrUnauthorized, c.from.Hex())
	}
	ds, err := getDataSet(c.st, b.DataSetID)
	if err != nil {
		return err
	}
	if !ds.WithCDN || ds.CDNRail == 0 {
		return fmt.Errorf("%w: data set %d has no CDN service", ErrInvalidArgument, ds.ID)
	}
	if b.CDNBytes == 0 && b.CacheMissBytes == 0 {
		return fmt.Errorf("%w: empty usage report", ErrInvalidArgument)
	}
	ev := Event{Kind: EvUsageReported, DataSetID: ds.ID, Bytes: b.CDNBytes, CacheMissBytes: b.CacheMissBytes, Address: addrp(c.from)}
	total := big.Zero()
	for _, part := range []struct {
		rail  uint64
		bytes uint64
		price abi.TokenAmount
	}{{ds.CDNRail, b.CDNBytes, CDNPricePerTiB}, {ds.CacheMissRail, b.CacheMissBytes, CacheMissPricePerTiB}} {
		amt := EgressCharge(part.bytes, part.price)
		if amt.IsZero() {
			continue
		}
		p, err := c.pay.ModifyRailPayment(c.e.cfg.WarmStorage, payments.RailID(part.rail), big.Zero(), amt, c.now)
		if err != nil {
			return payErr(err)
		}
		total = big.Add(total, p.Gross)
	}
	ev.Amount = amtp(total)
	c.emit(ev)
	return nil
}

func (c *applyCtx) topUpCDN(b TopUpCDNBody) error {
	ds, err := getDataSet(c.st, b.DataSetID)
	if err != nil {
		return err
	}
	if c.from != ds.Payer {
		return fmt.Errorf("%w: only the payer tops up data set %d", ErrUnauthorized, ds.ID)
	}
	if !ds.WithCDN {
		return fmt.Errorf("%w: data set %d has no CDN service", ErrInvalidArgument, ds.ID)
	}
	if !validAmount(b.CDNAmount) || !validAmount(b.CacheMissAmount) {
		return fmt.Errorf("%w: amounts must be non-negative", ErrInvalidArgument)
	}
	for _, part := range []struct {
		rail uint64
		amt  abi.TokenAmount
	}{{ds.CDNRail, b.CDNAmount}, {ds.CacheMissRail, b.CacheMissAmount}} {
		if part.amt.IsZero() {
			continue
		}
		r, err := c.pay.Rail(payments.RailID(part.rail))
		if err != nil {
			return payErr(err)
		}
		if err := payErr(c.pay.ModifyRailLockup(c.e.cfg.WarmStorage, r.ID, r.LockupPeriod, big.Add(r.LockupFixed, part.amt), c.now)); err != nil {
			return err
		}
	}
	c.emit(Event{Kind: EvCDNToppedUp, DataSetID: ds.ID, Amount: amtp(big.Add(b.CDNAmount, b.CacheMissAmount))})
	return nil
}
