//go:build !linux

package fsbackend

import "os"

const directFlag = 0

const directAlign = 4096

func disableDirect(f File) bool { return false }

func openDirect(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}
