//go:build linux

package fsbackend

import "golang.org/x/sys/unix"

// startWriteback asks the kernel to begin writing [off, off+n) to disk without waiting, so
// that dirty pages do not pile up and the fsync at Commit has little left to do.
func startWriteback(f File, off, n int64) {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return
	}
	// A hint only: failure here changes nothing about durability, which Sync provides.
	_ = unix.SyncFileRange(int(fd.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
