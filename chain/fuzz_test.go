package chain

import (
	"encoding/json"
	"testing"
)

// FuzzApplyTx feeds arbitrary bytes to the /tx decoding path and the engine: nothing may panic,
// and a refused transaction must leave the state hash unchanged.
func FuzzApplyTx(f *testing.F) {
	w := newWorld(f)
	id := w.setup(false)
	w.addPieces(id, makePiece(f, 1, 64))
	seed := func(kind TxKind, body any) {
		tx := w.tx(w.sp, kind, body)
		b, _ := json.Marshal(tx)
		f.Add(b)
	}
	seed(TxFaucet, FaucetBody{Amount: tokens(1)})
	seed(TxNextProvingPeriod, NextProvingPeriodBody{DataSetID: id, ChallengeEpoch: w.now + 100})
	seed(TxProvePossession, ProvePossessionBody{DataSetID: id})
	seed(TxSettleRail, SettleRailBody{RailID: 1})
	f.Add([]byte(`{"kind":"Faucet","from":"0x0000000000000000000000000000000000000001","nonce":0,"body":{},"sig":"0x00"}`))
	f.Add([]byte(`{"kind":"AddPieces","body":{"pieces":["bafkzcibcaapao"]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tx Tx
		if err := decodeBody(raw, &tx); err != nil {
			return
		}
		h := w.hash()
		ws, _, err := w.eng.Apply(w.st, &tx, w.now, w.beacon)
		if err != nil {
			if w.hash() != h {
				t.Fatalf("refused transaction changed the state: %v", err)
			}
			return
		}
		if ws == nil {
			t.Fatal("accepted without a write set")
		}
	})
}
