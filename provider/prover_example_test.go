package provider_test

import (
	"fmt"

	"github.com/warmstore/warmstore/chain"
	"github.com/warmstore/warmstore/provider"
)

// The prover's decisions for one data set through a period, with Filecoin's hourly schedule
// (M = 120 epochs, W = 20, finality 2).
func ExampleNextStep() {
	p := provider.ProvingParams{Period: 120, Window: 20, Finality: 2, NumChecks: 5}
	ds := chain.DataSet{LeafCount: 1024}
	fmt.Println("pieces added at 1000:", provider.NextStep(&ds, 1000, p, 0))

	// The chain activated the set at 1000: deadline 1120, challenge epoch mid-window.
	ds.Activation, ds.Deadline, ds.NextChallengeEpoch = 1000, 1120, 1110
	fmt.Println("at 1105:", provider.NextStep(&ds, 1105, p, 0))
	fmt.Println("at 1110:", provider.NextStep(&ds, 1110, p, 0))

	ds.ProvenThisPeriod = true
	fmt.Println("proven at 1111:", provider.NextStep(&ds, 1111, p, 0))

	ds.ProvenThisPeriod = false
	fmt.Println("nothing proven, at 1121:", provider.NextStep(&ds, 1121, p, 0))
	// Output:
	// pieces added at 1000: {schedule 1110 false}
	// at 1105: {wait 0 false}
	// at 1110: {prove 0 false}
	// proven at 1111: {schedule 1220 false}
	// nothing proven, at 1121: {schedule 1220 true}
}
