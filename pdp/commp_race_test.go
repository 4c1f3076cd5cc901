//go:build race

package pdp

// Under the race detector hashing is slower; stream a smaller sparse file.
const sparseTestSize = 64<<20 + 1000

// raceEnabled trims the largest oracle cross-checks, which hashhash runs slowly under -race.
const raceEnabled = true
