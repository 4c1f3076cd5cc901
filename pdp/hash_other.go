//go:build !amd64 || purego

package pdp

// hashPairs sets dst[i] = HashNode(src[2i], src[2i+1]); see hashPairsGeneric.
func hashPairs(dst, src []Node) { hashPairsGeneric(dst, src) }

// nodeHashKernel names the implementation in use, for benchmarks and reports.
const nodeHashKernel = "generic"
