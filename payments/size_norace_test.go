//go:build !race

package payments

const manySegmentsInTest = 20_000
