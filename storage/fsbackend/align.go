package fsbackend

import "unsafe"

// AlignedBuffer returns a zeroed n-byte slice whose address is aligned for direct I/O.
// Writers given such buffers in multiples of the alignment write them without copying.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % directAlign); r != 0 {
		off = directAlign - r
	}
	return b[off : off+n : off+n]
}

func isAligned(p []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0
}
