package provider

import (
	"slices"
	"testing"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/pdp"
)

// A piece leaves a data set (release is called) only with the last piece id that holds it;
// deleting the set releases each distinct piece once; unfollowed sets and other events change
// nothing.
func TestDataSetPiecesForget(t *testing.T) {
	a := pdp.PieceCID{Root: pdp.Node{1}, Height: 5}
	b := pdp.PieceCID{Root: pdp.Node{2}, Height: 5}
	d := dataSetPieces{7: {1: a, 2: a, 3: b}, 8: {1: b}}
	type rel struct {
		c  pdp.PieceCID
		ds uint64
	}
	var got []rel
	release := func(c pdp.PieceCID, ds uint64) { got = append(got, rel{c, ds}) }

	d.forget(chain.Event{Kind: chain.EvPiecesRemoved, DataSetID: 7, PieceIDs: []uint64{1, 99}}, release)
	if len(got) != 0 || len(d[7]) != 2 {
		t.Fatalf("removing one of two ids of a: released %v, set %v", got, d[7])
	}
	d.forget(chain.Event{Kind: chain.EvPiecesAdded, DataSetID: 7, PieceIDs: []uint64{2}}, release)
	d.forget(chain.Event{Kind: chain.EvPiecesRemoved, DataSetID: 9, PieceIDs: []uint64{1}}, release)
	if len(got) != 0 || len(d[7]) != 2 {
		t.Fatalf("other event or unfollowed set changed something: released %v, set %v", got, d[7])
	}
	d.forget(chain.Event{Kind: chain.EvPiecesRemoved, DataSetID: 7, PieceIDs: []uint64{2}}, release)
	if !slices.Equal(got, []rel{{a, 7}}) {
		t.Fatalf("removing a's last id released %v", got)
	}
	got = nil
	d[7][4] = b
	d.forget(chain.Event{Kind: chain.EvDataSetDeleted, DataSetID: 7}, release)
	if !slices.Equal(got, []rel{{b, 7}}) {
		t.Fatalf("deleting a set holding b twice released %v", got)
	}
	if _, ok := d[7]; ok || len(d[8]) != 1 {
		t.Fatalf("after deletion %v", d)
	}
}
