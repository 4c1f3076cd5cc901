// Package faultfs wraps a real fsbackend.FS to inject a fault at one chosen step and to
// simulate a power cut: on Crash, data written but never fsynced is lost and renames whose
// directory was never fsynced are undone. The storage crash tests use it to cut ingest and
// garbage collection at every step.
package faultfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/warmstore/warmstore/storage/fsbackend"
)

// Mode says what happens after the injected fault.
type Mode int

const (
	// FailOnce fails the chosen step only; later steps run normally (a transient error such
	// as a full disk that is then freed).
	FailOnce Mode = iota
	// FailAndDie fails the chosen step and every later one, as if the process had died
	// there; call Crash afterwards to also drop what was never made durable.
	FailAndDie
)

// FS is a fault-injecting wrapper around a real FS.
type FS struct {
	inner fsbackend.FS

	mu      sync.Mutex
	ops     int
	failAt  int // step number that fails; -1 when disarmed
	failErr error
	mode    Mode
	dead    bool
	steps   []string
	nodes   map[string]*node // files whose durability is tracked, by current path
	pending []rename         // renames not yet made durable by a SyncDir
}

type node struct {
	size, synced int64
}

type rename struct {
	oldname, newname string
}

// New wraps inner.
func New(inner fsbackend.FS) *FS {
	return &FS{inner: inner, failAt: -1, nodes: map[string]*node{}}
}

// FailAt arms the fault: the step numbered n (counting from 0 at this call) fails with err.
func (f *FS) FailAt(n int, err error, mode Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops, f.failAt, f.failErr, f.mode, f.steps = 0, n, err, mode, nil
}

// Steps is how many steps ran since FailAt (or since New), including the failed one.
func (f *FS) Steps() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Fired reports whether the armed fault has been injected.
func (f *FS) Fired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failAt >= 0 && f.ops > f.failAt
}

// StepNames lists the steps since FailAt, for test failure messages.
func (f *FS) StepNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.steps...)
}

// step accounts one operation and returns the error to inject, if any.
func (f *FS) step(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return fmt.Errorf("faultfs: %s %s after crash: %w", op, filepath.Base(name), syscall.EIO)
	}
	n := f.ops
	f.ops++
	f.steps = append(f.steps, op+" "+filepath.Base(name))
	if n != f.failAt {
		return nil
	}
	if f.mode == FailAndDie {
		f.dead = true
	}
	return fmt.Errorf("faultfs: injected at step %d (%s %s): %w", n, op, filepath.Base(name), f.failErr)
}

// Crash simulates a power cut: renames not followed by an fsync of their directory are undone
// and every tracked file loses what was written after its last fsync. The FS stays dead (every
// operation fails) so that the code under test cannot repair anything afterwards.
func (f *FS) Crash() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = true
	for i := len(f.pending) - 1; i >= 0; i-- {
		r := f.pending[i]
		if err := f.inner.Rename(r.newname, r.oldname); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("faultfs: undo rename %s: %w", r.newname, err)
		}
		if n, ok := f.nodes[r.newname]; ok {
			delete(f.nodes, r.newname)
			f.nodes[r.oldname] = n
		}
	}
	f.pending = nil
	for path, n := range f.nodes {
		if n.size > n.synced {
			if err := os.Truncate(path, n.synced); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("faultfs: drop unsynced data of %s: %w", path, err)
			}
		}
	}
	f.nodes = map[string]*node{}
	return nil
}

// Create implements fsbackend.FS.
func (f *FS) Create(name string, direct bool) (fsbackend.File, error) {
	if err := f.step("create", name); err != nil {
		return nil, err
	}
	file, err := f.inner.Create(name, direct)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	n := &node{}
	f.nodes[name] = n
	f.mu.Unlock()
	return &trackedFile{File: file, fs: f, name: name, node: n}, nil
}

// Open implements fsbackend.FS.
func (f *FS) Open(name string) (fsbackend.File, error) {
	if err := f.step("open", name); err != nil {
		return nil, err
	}
	return f.inner.Open(name)
}

// Rename implements fsbackend.FS.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.step("rename", oldname); err != nil {
		return err
	}
	if err := f.inner.Rename(oldname, newname); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.nodes[oldname]; ok {
		delete(f.nodes, oldname)
		f.nodes[newname] = n
	}
	f.pending = append(f.pending, rename{oldname, newname})
	return nil
}

// Remove implements fsbackend.FS. Removals are treated as durable at once: undoing them would
// need the removed bytes, and a removal that is lost only leaves an orphan for reconciliation.
func (f *FS) Remove(name string) error {
	if err := f.step("remove", name); err != nil {
		return err
	}
	if err := f.inner.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.nodes, name)
	f.mu.Unlock()
	return nil
}

// MkdirAll implements fsbackend.FS.
func (f *FS) MkdirAll(dir string) error {
	if err := f.step("mkdir", dir); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir)
}

// ReadDir implements fsbackend.FS.
func (f *FS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := f.step("readdir", dir); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

// Stat implements fsbackend.FS.
func (f *FS) Stat(name string) (os.FileInfo, error) {
	if err := f.step("stat", name); err != nil {
		return nil, err
	}
	return f.inner.Stat(name)
}

// SyncDir implements fsbackend.FS: it makes pending renames into dir durable.
func (f *FS) SyncDir(dir string) error {
	if err := f.step("syncdir", dir); err != nil {
		return err
	}
	if err := f.inner.SyncDir(dir); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.pending[:0]
	for _, r := range f.pending {
		if filepath.Dir(r.newname) != filepath.Clean(dir) {
			kept = append(kept, r)
		}
	}
	f.pending = kept
	return nil
}

type trackedFile struct {
	fsbackend.File
	fs   *FS
	name string
	node *node
}

func (t *trackedFile) Write(p []byte) (int, error) {
	if err := t.fs.step("write", t.name); err != nil {
		return 0, err
	}
	n, err := t.File.Write(p)
	t.fs.mu.Lock()
	t.node.size += int64(n)
	t.fs.mu.Unlock()
	return n, err
}

func (t *trackedFile) Truncate(size int64) error {
	if err := t.fs.step("truncate", t.name); err != nil {
		return err
	}
	if err := t.File.Truncate(size); err != nil {
		return err
	}
	t.fs.mu.Lock()
	t.node.size = size
	t.node.synced = min(t.node.synced, size)
	t.fs.mu.Unlock()
	return nil
}

func (t *trackedFile) Sync() error {
	if err := t.fs.step("sync", t.name); err != nil {
		return err
	}
	if err := t.File.Sync(); err != nil {
		return err
	}
	t.fs.mu.Lock()
	t.node.synced = t.node.size
	t.fs.mu.Unlock()
	return nil
}

func (t *trackedFile) Close() error {
	// Close always releases the descriptor, even on a dead FS, so tests do not leak files.
	err := t.fs.step("close", t.name)
	cerr := t.File.Close()
	if err != nil {
		return err
	}
	return cerr
}
