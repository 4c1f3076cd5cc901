package fsbackend

import (
	"io"
	"os"
)

// FS is the set of file-system operations the backend performs. The operating system
// implementation is OS; tests wrap it to inject faults (ENOSPC, EIO) at any single step and
// to simulate what a power cut does to data that was never synced.
type FS interface {
	// Create creates a new file for writing and reading; it fails if name exists. With direct
	// set the file should bypass the page cache where the system supports it (O_DIRECT);
	// writes to it are then aligned (see AlignedBuffer) and the tail is fixed with Truncate.
	Create(name string, direct bool) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	MkdirAll(dir string) error
	ReadDir(dir string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Close() error
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
}

// OS is the FS of the operating system.
type OS struct{}

// Create implements FS.
func (OS) Create(name string, direct bool) (File, error) {
	if direct {
		f, err := openDirect(name)
		if err == nil {
			return f, nil
		}
		// Some file systems refuse O_DIRECT (and may have created the file before refusing);
		// fall back to buffered writes.
		os.Remove(name)
	}
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}

// Open implements FS.
func (OS) Open(name string) (File, error) { return os.Open(name) }

// Rename implements FS.
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// MkdirAll implements FS.
func (OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadDir implements FS.
func (OS) ReadDir(dir string) ([]os.DirEntry, error) { return os.ReadDir(dir) }

// Stat implements FS.
func (OS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
