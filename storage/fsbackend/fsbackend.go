// Package fsbackend implements blob.Backend on a local directory.
//
// Layout: <root>/blobs/<name> holds committed blobs; <root>/tmp/ holds writes in progress.
// Commit is: fsync the temporary file, rename it into blobs/, fsync blobs/. A crash at any
// point leaves either the old state or the new one, plus at most a stray temporary file that
// AbortIncomplete removes.
package fsbackend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/warmstore/warmstore/storage/blob"
)

const (
	blobsDir = "blobs"
	tmpDir   = "tmp"
	// writebackEvery is how many bytes a writer lets accumulate before it asks the kernel to
	// start writing them back.
	writebackEvery = 8 << 20
)

// Backend is a blob.Backend on a local directory.
type Backend struct {
	root string
	fs   FS
}

var _ blob.Backend = (*Backend)(nil)

// New opens (creating if needed) a backend rooted at dir, doing its file operations through
// fsys (OS{} when nil).
func New(dir string, fsys FS) (*Backend, error) {
	if fsys == nil {
		fsys = OS{}
	}
	b := &Backend{root: dir, fs: fsys}
	for _, d := range []string{b.root, b.dir(blobsDir), b.dir(tmpDir)} {
		if err := fsys.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("fsbackend: create %s: %w", d, err)
		}
	}
	// The new directories themselves must survive a crash.
	if err := fsys.SyncDir(b.root); err != nil {
		return nil, fmt.Errorf("fsbackend: sync %s: %w", b.root, err)
	}
	return b, nil
}

func (b *Backend) dir(sub string) string { return filepath.Join(b.root, sub) }

// Path is the file that holds the committed blob name. Tests and tools use it to reach the
// file directly (e.g. to drop it from the page cache).
func (b *Backend) Path(name string) string { return filepath.Join(b.root, blobsDir, name) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 200 {
		return fmt.Errorf("fsbackend: invalid blob name %q", name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("fsbackend: invalid blob name %q", name)
		}
	}
	return nil
}

func notExist(err error, name string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsbackend: %s: %w (%v)", name, blob.ErrNotExist, err)
	}
	return fmt.Errorf("fsbackend: %s: %w", name, err)
}

// Create implements blob.Backend.
func (b *Backend) Create(ctx context.Context, name string) (blob.Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(b.root, tmpDir, name+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := b.fs.Create(tmp, true)
	if err != nil {
		return nil, fmt.Errorf("fsbackend: create %s: %w", tmp, err)
	}
	return &writer{b: b, f: f, tmp: tmp, final: b.Path(name)}, nil
}

type writer struct {
	b          *Backend
	f          File
	tmp, final string
	written    int64 // logical bytes accepted
	onDisk     int64 // bytes written to the file, including alignment padding
	flushedTo  int64
	stage      []byte // aligned staging for unaligned input
	staged     int
	mu         sync.Mutex
	done       bool
}

// stageSize is the aligned staging buffer used when callers pass unaligned slices.
const stageSize = 1 << 20

// Write accepts any slices. Aligned input in multiples of the alignment (what the piece
// store's pipeline passes) goes to the file without a copy; the rest is staged.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("fsbackend: write after commit or abort")
	}
	total := len(p)
	for len(p) > 0 {
		if w.staged == 0 && len(p) >= directAlign && isAligned(p) {
			n := len(p) &^ (directAlign - 1)
			if err := w.writeFile(p[:n]); err != nil {
				return total - len(p), err
			}
			w.written += int64(n)
			p = p[n:]
			continue
		}
		if w.stage == nil {
			w.stage = AlignedBuffer(stageSize)
		}
		c := copy(w.stage[w.staged:], p)
		w.staged += c
		w.written += int64(c)
		p = p[c:]
		if w.staged == len(w.stage) {
			if err := w.writeFile(w.stage); err != nil {
				return total - len(p), err
			}
			w.staged = 0
		}
	}
	return total, nil
}

func (w *writer) writeFile(b []byte) error {
	n, err := w.f.Write(b)
	if err != nil && n == 0 && errors.Is(err, syscall.EINVAL) && disableDirect(w.f) {
		n, err = w.f.Write(b)
	}
	w.onDisk += int64(n)
	if err != nil {
		return fmt.Errorf("fsbackend: write %s: %w", w.tmp, err)
	}
	if w.onDisk-w.flushedTo >= writebackEvery {
		startWriteback(w.f, w.flushedTo, w.onDisk-w.flushedTo)
		w.flushedTo = w.onDisk
	}
	return nil
}

// flushTail writes the staged remainder padded to the alignment, then cuts the padding off.
func (w *writer) flushTail() error {
	if w.staged > 0 {
		padded := (w.staged + directAlign - 1) &^ (directAlign - 1)
		clear(w.stage[w.staged:padded])
		if err := w.writeFile(w.stage[:padded]); err != nil {
			return err
		}
		w.staged = 0
	}
	if w.onDisk != w.written {
		if err := w.f.Truncate(w.written); err != nil {
			return fmt.Errorf("fsbackend: truncate %s: %w", w.tmp, err)
		}
	}
	return nil
}

func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("fsbackend: commit after commit or abort")
	}
	w.done = true
	if err := w.flushTail(); err != nil {
		w.f.Close()
		w.b.fs.Remove(w.tmp)
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		w.b.fs.Remove(w.tmp)
		return fmt.Errorf("fsbackend: sync %s: %w", w.tmp, err)
	}
	if err := w.f.Close(); err != nil {
		w.b.fs.Remove(w.tmp)
		return fmt.Errorf("fsbackend: close %s: %w", w.tmp, err)
	}
	if err := w.b.fs.Rename(w.tmp, w.final); err != nil {
		w.b.fs.Remove(w.tmp)
		return fmt.Errorf("fsbackend: rename %s: %w", w.tmp, err)
	}
	if err := w.b.fs.SyncDir(w.b.dir(blobsDir)); err != nil {
		// The rename may or may not survive a crash; the caller treats the blob as not
		// committed and removes it (or startup reconciliation does).
		return fmt.Errorf("fsbackend: sync dir after rename of %s: %w", w.final, err)
	}
	return nil
}

func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := w.b.fs.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsbackend: abort %s: %w", w.tmp, err)
	}
	return nil
}

// Open implements blob.Backend.
func (b *Backend) Open(ctx context.Context, name string) (blob.Reader, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := b.fs.Open(b.Path(name))
	if err != nil {
		return nil, notExist(err, name)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fsbackend: stat %s: %w", name, err)
	}
	return &reader{File: f, size: fi.Size()}, nil
}

type reader struct {
	File
	size int64
}

func (r *reader) Size() int64 { return r.size }

// Fd exposes the descriptor for page-cache control in tools and benchmarks.
func (r *reader) Fd() uintptr {
	if f, ok := r.File.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// Stat implements blob.Backend.
func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	fi, err := b.fs.Stat(b.Path(name))
	if err != nil {
		return 0, notExist(err, name)
	}
	return fi.Size(), nil
}

// Remove implements blob.Backend.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := b.fs.Remove(b.Path(name)); err != nil {
		return notExist(err, name)
	}
	if err := b.fs.SyncDir(b.dir(blobsDir)); err != nil {
		return fmt.Errorf("fsbackend: sync dir after remove of %s: %w", name, err)
	}
	return nil
}

// List implements blob.Backend.
func (b *Backend) List(ctx context.Context, fn func(name string, size int64) error) error {
	ents, err := b.fs.ReadDir(b.dir(blobsDir))
	if err != nil {
		return fmt.Errorf("fsbackend: list: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed concurrently
		}
		if err != nil {
			return fmt.Errorf("fsbackend: list %s: %w", e.Name(), err)
		}
		if err := fn(e.Name(), fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// AbortIncomplete implements blob.Backend: it removes every temporary file.
func (b *Backend) AbortIncomplete(ctx context.Context) (int, error) {
	ents, err := b.fs.ReadDir(b.dir(tmpDir))
	if err != nil {
		return 0, fmt.Errorf("fsbackend: list tmp: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := b.fs.Remove(filepath.Join(b.dir(tmpDir), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("fsbackend: remove stale %s: %w", e.Name(), err)
		}
		n++
	}
	return n, nil
}
