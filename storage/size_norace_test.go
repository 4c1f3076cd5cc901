//go:build !race

package storage

// largeIngestSize is the payload of TestLargeIngestBoundedMemory.
const largeIngestSize = 1 << 30
