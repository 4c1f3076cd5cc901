//go:build race

package payments

const manySegmentsInTest = 2_000
