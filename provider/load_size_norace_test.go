//go:build !race

package provider

// loadRangeSize is the range length of TestLoadThousandConcurrentRanges.
const loadRangeSize = 1 << 20
