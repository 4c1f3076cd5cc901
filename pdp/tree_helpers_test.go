package pdp

// fullTree is the test oracle for everything tree-shaped: it fr32-pads the whole payload
// (zero-extended to the tree's raw capacity), keeps every level in memory and hashes up with
// HashNode. levels[0] are the leaves, levels[h] the single root. Only for small pieces.
func fullTree(raw []byte) [][]Node {
	h := TreeHeight(uint64(len(raw)))
	buf := make([]byte, rawCapacity(h))
	copy(buf, raw)
	padded := make([]byte, len(buf)/127*128)
	Pad(padded, buf)
	leaves := make([]Node, len(padded)/NodeSize)
	for i := range leaves {
		copy(leaves[i][:], padded[i*NodeSize:])
	}
	levels := [][]Node{leaves}
	for cur := leaves; len(cur) > 1; {
		next := make([]Node, len(cur)/2)
		for i := range next {
			next[i] = HashNode(&cur[2*i], &cur[2*i+1])
		}
		levels = append(levels, next)
		cur = next
	}
	return levels
}

func fullTreeRoot(raw []byte) Node {
	l := fullTree(raw)
	return l[len(l)-1][0]
}
