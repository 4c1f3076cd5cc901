package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/warmstore/warmstore/storage/fsbackend"
)

// TestCrashDropsWhatWasNotDurable checks the power-cut model the storage crash tests rely on.
func TestCrashDropsWhatWasNotDurable(t *testing.T) {
	dir := t.TempDir()
	fs := New(fsbackend.OS{})
	write := func(name, data string, sync bool) {
		f, err := fs.Create(filepath.Join(dir, name), false)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(data))
		if sync {
			f.Sync()
		}
		f.Write([]byte("-unsynced"))
		f.Close()
	}
	write("a", "synced", true)
	write("b", "never", false)
	fs.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "a2"))
	fs.SyncDir(dir)
	fs.Rename(filepath.Join(dir, "b"), filepath.Join(dir, "b2"))
	if err := fs.Crash(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a2")); string(got) != "synced" {
		t.Fatalf("a2 = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "b2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("rename without directory sync survived the crash")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b")); len(got) != 0 {
		t.Fatalf("unsynced data survived: %q", got)
	}
	if _, err := fs.Stat(dir); !errors.Is(err, syscall.EIO) {
		t.Fatalf("FS alive after crash: %v", err)
	}
}

func TestFailAt(t *testing.T) {
	dir := t.TempDir()
	fs := New(fsbackend.OS{})
	fs.FailAt(1, syscall.ENOSPC, FailOnce)
	f, err := fs.Create(filepath.Join(dir, "x"), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("step 1: %v", err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatalf("after a FailOnce fault: %v", err)
	}
	f.Close()
	if !fs.Fired() || fs.Steps() != 4 {
		t.Fatalf("fired %v steps %d %v", fs.Fired(), fs.Steps(), fs.StepNames())
	}
}
