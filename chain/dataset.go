package chain

import (
	"fmt"
	stdbig "math/big"
	"net/url"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/filecoin-project/go-state-types/big"

	"github.com/warmstore/warmstore/chain/eip712"
	"github.com/warmstore/warmstore/payments"
)

func checkServiceURL(s string) error {
	if len(s) == 0 || len(s) > maxServiceURLSize {
		return fmt.Errorf("%w: service URL must be 1..%d bytes", ErrInvalidArgument, maxServiceURLSize)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: service URL %q is not an http(s) URL", ErrInvalidArgument, s)
	}
	return nil
}

func checkMetadata(m []eip712.MetadataEntry, maxKeys int) error {
	if len(m) > maxKeys {
		return fmt.Errorf("%w: %d metadata keys, max %d", ErrInvalidArgument, len(m), maxKeys)
	}
	seen := map[string]bool{}
	for _, e := range m {
		if len(e.Key) == 0 || len(e.Key) > maxMetadataKey || len(e.Value) > maxMetadataValue {
			return fmt.Errorf("%w: metadata key %q: keys 1..%d bytes, values ≤ %d bytes", ErrInvalidArgument, e.Key, maxMetadataKey, maxMetadataValue)
		}
		if seen[e.Key] {
			return fmt.Errorf("%w: duplicate metadata key %q", ErrInvalidArgument, e.Key)
		}
		seen[e.Key] = true
	}
	return nil
}

func (c *applyCtx) putDataSet(ds *DataSet) error {
	delete(c.dsCache, ds.ID)
	return putJSON(c.st, keyDataSet(ds.ID), ds)
}

// ownDataSet loads a live data set whose provider is the sender.
func (c *applyCtx) ownDataSet(id uint64) (*DataSet, error) {
	ds, err := getDataSet(c.st, id)
	if err != nil {
		return nil, err
	}
	if ds.Provider != c.from {
		return nil, fmt.Errorf("%w: data set %d belongs to provider %s", ErrUnauthorized, id, ds.Provider.Hex())
	}
	return ds, nil
}

// checkRunning refuses provider work on a data set whose service ended before now.
func (c *applyCtx) checkRunning(ds *DataSet) error {
	if ds.EndEpoch != 0 && c.now > ds.EndEpoch {
		return fmt.Errorf("%w: data set %d service ended at %d", ErrTerminated, ds.ID, ds.EndEpoch)
	}
	return nil
}

func (c *applyCtx) account(owner common.Address) (payments.AccountInfo, error) {
	info, err := c.pay.Account(c.e.cfg.Token, owner, c.now)
	return info, payErr(err)
}

// --- create ------------------------------------------------------------------------------

func (c *applyCtx) createDataSet(b CreateDataSetBody) error {
	prov, err := c.provider(c.from)
	if err != nil {
		return err
	}
	if b.Payer == (common.Address{}) {
		return fmt.Errorf("%w: payer is the zero address", ErrInvalidArgument)
	}
	if err := checkMetadata(b.Metadata, maxMetadataKeys); err != nil {
		return err
	}
	if !validAmount(b.ClientDataSetID) {
		return fmt.Errorf("%w: clientDataSetId must be a uint256", ErrInvalidArgument)
	}
	auth := eip712.CreateDataSet{ClientDataSetID: b.ClientDataSetID.Int, Payee: prov.Payee, Metadata: b.Metadata}
	if err := c.verifyAuth(auth, b.Signature, b.Payer); err != nil {
		return err
	}
	if err := c.useAuthNonce(b.Payer, "create", b.ClientDataSetID); err != nil {
		return err
	}
	withCDN := slices.ContainsFunc(b.Metadata, func(e eip712.MetadataEntry) bool { return e.Key == "withCDN" })

	// The reference's pre-check: a month of the data-set fee plus the lifecycle reserve (plus
	// the CDN lockups) must be available, so a data set is never created unfundable.
	need := big.Add(DataSetFeeMonth, LifecycleReserveTarget)
	if withCDN {
		need = big.Sum(need, DefaultCDNLockup, DefaultCacheMissLockup)
	}
	info, err := c.account(b.Payer)
	if err != nil {
		return err
	}
	if info.Available.LessThan(need) {
		return fmt.Errorf("%w: payer %s has %s available, a data set needs %s", ErrInsufficientFunds, b.Payer.Hex(), info.Available, need)
	}
	appr, err := c.pay.Approval(c.e.cfg.Token, b.Payer, c.e.cfg.WarmStorage)
	if err != nil {
		return payErr(err)
	}
	if !appr.Approved || appr.MaxLockupPeriod < PDPLockupPeriod {
		return fmt.Errorf("%w: payer %s must approve the warm-storage service %s with a max lockup period ≥ %d",
			ErrPayments, b.Payer.Hex(), c.e.cfg.WarmStorage.Hex(), PDPLockupPeriod)
	}

	id, err := nextID(c.st, "dataset")
	if err != nil {
		return err
	}
	fwss, tok := c.e.cfg.WarmStorage, c.e.cfg.Token
	pdpRail, err := c.pay.CreateRail(fwss, tok, b.Payer, prov.Payee, fwss, 0, fwss, c.now)
	if err != nil {
		return payErr(err)
	}
	if err := payErr(c.pay.ModifyRailLockup(fwss, pdpRail, PDPLockupPeriod, LifecycleReserveTarget, c.now)); err != nil {
		return err
	}
	ds := &DataSet{
		ID: id, Provider: c.from, Payer: b.Payer, Payee: prov.Payee, ClientDataSetID: b.ClientDataSetID,
		Metadata: b.Metadata, WithCDN: withCDN, Created: c.now, PDPRail: uint64(pdpRail),
		Removals: []uint64{}, LastProvenEpoch: c.now,
		PendingFees: CreateDataSetFee, Reserve: LifecycleReserveTarget,
	}
	putU64(c.st, keyRailDataSet(uint64(pdpRail)), id)
	if withCDN {
		miss, err := c.pay.CreateRail(fwss, tok, b.Payer, prov.Payee, common.Address{}, 0, common.Address{}, c.now)
		if err != nil {
			return payErr(err)
		}
		if err := payErr(c.pay.ModifyRailLockup(fwss, miss, CDNLockupPeriod, DefaultCacheMissLockup, c.now)); err != nil {
			return err
		}
		cdn, err := c.pay.CreateRail(fwss, tok, b.Payer, c.e.cfg.FilBeam, common.Address{}, 0, common.Address{}, c.now)
		if err != nil {
			return payErr(err)
		}
		if err := payErr(c.pay.ModifyRailLockup(fwss, cdn, CDNLockupPeriod, DefaultCDNLockup, c.now)); err != nil {
			return err
		}
		ds.CacheMissRail, ds.CDNRail = uint64(miss), uint64(cdn)
		putU64(c.st, keyRailDataSet(uint64(miss)), id)
		putU64(c.st, keyRailDataSet(uint64(cdn)), id)
	}
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	c.emit(Event{Kind: EvDataSetCreated, DataSetID: id, RailID: uint64(pdpRail), Address: addrp(b.Payer), Note: c.from.Hex()})
	return nil
}

// --- pieces --------------------------------------------------------------------------------

func (c *applyCtx) addPieces(b AddPiecesBody) error {
	ds, err := c.ownDataSet(b.DataSetID)
	if err != nil {
		return err
	}
	if ds.EndEpoch != 0 {
		return fmt.Errorf("%w: data set %d was terminated; no pieces can be added", ErrTerminated, ds.ID)
	}
	n := len(b.Pieces)
	if n == 0 || n > maxPiecesPerAdd {
		return fmt.Errorf("%w: %d pieces, want 1..%d", ErrInvalidArgument, n, maxPiecesPerAdd)
	}
	meta := b.PieceMetadata
	if meta == nil {
		meta = make([][]eip712.MetadataEntry, n)
	}
	if len(meta) != n {
		return fmt.Errorf("%w: %d pieces but %d metadata lists", ErrInvalidArgument, n, len(meta))
	}
	data := make([][]byte, n)
	for i, p := range b.Pieces {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: piece %d: %v", ErrInvalidArgument, i, err)
		}
		if p.LeafCount() == 0 {
			return fmt.Errorf("%w: piece %d holds no data", ErrInvalidArgument, i)
		}
		if err := checkMetadata(meta[i], maxPieceMetaKeys); err != nil {
			return fmt.Errorf("piece %d: %w", i, err)
		}
		data[i] = p.CID().Bytes()
	}
	auth := eip712.AddPieces{ClientDataSetID: ds.ClientDataSetID.Int, Nonce: b.Nonce.Int, PieceData: data, PieceMetadata: meta}
	if !validAmount(b.Nonce) {
		return fmt.Errorf("%w: nonce must be a uint256", ErrInvalidArgument)
	}
	if err := c.verifyAuth(auth, b.Signature, ds.Payer); err != nil {
		return err
	}
	if err := c.useAuthNonce(ds.Payer, "add", b.Nonce); err != nil {
		return err
	}
	counts, err := getCounts(c.st, ds.ID)
	if err != nil {
		return err
	}
	first := ds.PieceCount
	ids := make([]uint64, n)
	for i, p := range b.Pieces {
		pc := Piece{ID: ds.PieceCount, CID: p, LeafCount: p.LeafCount(), Metadata: meta[i], Added: c.now}
		if err := putJSON(c.st, keyPiece(ds.ID, pc.ID), pc); err != nil {
			return err
		}
		counts = append(counts, pc.LeafCount)
		ids[i] = pc.ID
		ds.PieceCount++
		ds.LeafCount += pc.LeafCount
	}
	putCounts(c.st, ds.ID, counts)
	fee := big.Add(AddPiecesBaseFee, big.Mul(AddPiecesPerPieceFee, big.NewInt(int64(n))))
	ds.PendingFees = big.Add(ds.PendingFees, fee)
	if err := c.updateStorageRate(ds); err != nil {
		return err
	}
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	c.emit(Event{Kind: EvPiecesAdded, DataSetID: ds.ID, PieceIDs: ids, LeafCount: ds.LeafCount, Note: fmt.Sprintf("first piece %d", first)})
	return nil
}

func (c *applyCtx) scheduleRemovals(b SchedulePieceRemovalsBody) error {
	ds, err := c.ownDataSet(b.DataSetID)
	if err != nil {
		return err
	}
	if err := c.checkRunning(ds); err != nil {
		return err
	}
	if len(b.PieceIDs) == 0 {
		return fmt.Errorf("%w: no piece ids", ErrInvalidArgument)
	}
	if len(ds.Removals)+len(b.PieceIDs) > MaxRemovals {
		return fmt.Errorf("%w: %d removals queued, max %d", ErrInvalidArgument, len(ds.Removals)+len(b.PieceIDs), MaxRemovals)
	}
	auth := eip712.SchedulePieceRemovals{ClientDataSetID: ds.ClientDataSetID.Int, PieceIDs: toStdInts(b.PieceIDs)}
	if err := c.verifyAuth(auth, b.Signature, ds.Payer); err != nil {
		return err
	}
	queued := map[uint64]bool{}
	for _, id := range ds.Removals {
		queued[id] = true
	}
	for _, id := range b.PieceIDs {
		var p Piece
		ok, err := getJSON(c.st, keyPiece(ds.ID, id), &p)
		if err != nil {
			return err
		}
		if !ok || p.Removed {
			return fmt.Errorf("%w: piece %d of data set %d is not live", ErrNotFound, id, ds.ID)
		}
		if queued[id] {
			return fmt.Errorf("%w: piece %d is already scheduled for removal", ErrAlreadyExists, id)
		}
		queued[id] = true
		ds.Removals = append(ds.Removals, id)
	}
	ds.PendingFees = big.Add(ds.PendingFees, ScheduleRemovalsFee)
	if err := c.replenishReserve(ds); err != nil {
		return err
	}
	if err := c.putDataSet(ds); err != nil {
		return err
	}
	c.emit(Event{Kind: EvRemovalsScheduled, DataSetID: ds.ID, PieceIDs: b.PieceIDs})
	return nil
}

// processRemovals drains the removal queue (PDPVerifier v3.4: at the period boundary).
func (c *applyCtx) processRemovals(ds *DataSet) (bool, error) {
	if len(ds.Removals) == 0 {
		return false, nil
	}
	counts, err := getCounts(c.st, ds.ID)
	if err != nil {
		return false, err
	}
	for _, id := range ds.Removals {
		var p Piece
		ok, err := getJSON(c.st, keyPiece(ds.ID, id), &p)
		if err != nil {
			return false, err
		}
		if !ok || id >= uint64(len(counts)) {
			return false, fmt.Errorf("%w: queued piece %d of data set %d is missing", ErrInternal, id, ds.ID)
		}
		ds.LeafCount -= counts[id]
		counts[id] = 0
		p.Removed = true
		if err := putJSON(c.st, keyPiece(ds.ID, id), p); err != nil {
			return false, err
		}
	}
	putCounts(c.st, ds.ID, counts)
	c.emit(Event{Kind: EvPiecesRemoved, DataSetID: ds.ID, PieceIDs: ds.Removals, LeafCount: ds.LeafCount})
	ds.Removals = []uint64{}
	return true, nil
}

// --- rates and fees (reference §5.3) -----------------------------------------------------

// replenishReserve raises the PDP rail's fixed lockup back to the reserve target plus the
// pending fees when the reserve would not cover them with the threshold to spare.
func (c *applyCtx) replenishReserve(ds *DataSet) error {
	if ds.EndEpoch != 0 {
		return nil
	}
	if ds.Reserve.LessThan(big.Add(ds.PendingFees, ReplenishThreshold)) {
		target := big.Add(LifecycleReserveTarget, ds.PendingFees)
		if err := payErr(c.pay.ModifyRailLockup(c.e.cfg.WarmStorage, payments.RailID(ds.PDPRail), PDPLockupPeriod, target, c.now)); err != nil {
			return err
		}
		ds.Reserve = target
	}
	return nil
}

// updateStorageRate sets the PDP rail's rate from the live leaf count and pays the pending
// one-time fees to the provider out of the reserve.
func (c *applyCtx) updateStorageRate(ds *DataSet) error {
	if err := c.replenishReserve(ds); err != nil {
		return err
	}
	pending := ds.PendingFees
	if pending.GreaterThan(ds.Reserve) {
		pending = ds.Reserve
	}
	rate := StorageRate(ds.LeafCount)
	rail, err := c.pay.Rail(payments.RailID(ds.PDPRail))
	if err != nil {
		return payErr(err)
	}
	if ds.EndEpoch != 0 && rate.GreaterThan(rail.PaymentRate) {
		rate = rail.PaymentRate // a terminated rail's rate can only go down
	}
	if rate.Equals(rail.PaymentRate) && pending.IsZero() {
		return nil
	}
	p, err := c.pay.ModifyRailPayment(c.e.cfg.WarmStorage, payments.RailID(ds.PDPRail), rate, pending, c.now)
	if err != nil {
		return payErr(err)
	}
	ds.Reserve = big.Sub(ds.Reserve, pending)
	ds.PendingFees = big.Zero()
	if !pending.IsZero() {
		c.emit(Event{Kind: EvOneTimePayment, DataSetID: ds.ID, RailID: ds.PDPRail, Amount: amtp(p.Gross), NetPayee: amtp(p.NetPayee), NetworkFee: amtp(p.NetworkFee)})
	}
	return nil
}

func toStdInts(ids []uint64) []*stdbig.Int {
	out := make([]*stdbig.Int, len(ids))
	for i, id := range ids {
		out[i] = new(stdbig.Int).SetUint64(id)
	}
	return out
}
