//go:build race

package storage

// largeIngestSize is the payload of TestLargeIngestBoundedMemory; small under -race, where
// everything is ~10x slower.
const largeIngestSize = 32 << 20
