//go:build !race

package pdp

// 4 GiB + 1000 bytes: offsets past 2^32 and a tree of height 28.
const sparseTestSize = 4<<30 + 1000

const raceEnabled = false
