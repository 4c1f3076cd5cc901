package provider

import (
	"testing"

	"github.com/filecoin-project/go-state-types/abi"
)

func TestLastClosedDeadline(t *testing.T) {
	for _, c := range []struct{ a, m, now, want abi.ChainEpoch }{
		{0, 30, 500, 0},     // never activated
		{100, 30, 100, 0},   // activation epoch
		{100, 30, 130, 0},   // at the first deadline: still open (inclusive)
		{100, 30, 131, 130}, // just past it
		{100, 30, 160, 130},
		{100, 30, 161, 160},
		{100, 30, 1000, 970},
	} {
		if got := LastClosedDeadline(c.a, c.m, c.now); got != c.want {
			t.Errorf("LastClosedDeadline(%d, %d, %d) = %d, want %d", c.a, c.m, c.now, got, c.want)
		}
	}
}
