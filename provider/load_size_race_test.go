//go:build race

package provider

// loadRangeSize is the range length of TestLoadThousandConcurrentRanges: small under -race,
// where every byte copied costs ~10x.
const loadRangeSize = 16 << 10
