package fsbackend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/warmstore/warmstore/storage/blob"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(b)
	return b
}

func readAll(t *testing.T, be *Backend, name string) []byte {
	t.Helper()
	r, err := be.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteChunkings writes the same bytes in aligned, unaligned and odd-sized chunks; the
// committed blob must equal them exactly (direct-I/O staging and tail truncation).
func TestWriteChunkings(t *testing.T) {
	be, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 1 << 20, 3<<20 + 123} {
		data := randomBytes(size)
		aligned := AlignedBuffer(size)
		copy(aligned, data)
		for ci, chunk := range []int{1 << 20, 4096, 1000, 7, 1<<20 + 1} {
			for _, src := range [][]byte{data, aligned} {
				name := "blob"
				w, err := be.Create(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < size; off += chunk {
					if n, err := w.Write(src[off:min(off+chunk, size)]); err != nil || n != min(chunk, size-off) {
						t.Fatalf("write: %d, %v", n, err)
					}
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, be, name); !bytes.Equal(got, data) {
					t.Fatalf("size %d chunk %d: read %d bytes that differ", size, ci, len(got))
				}
				if n, err := be.Stat(ctx, name); err != nil || n != int64(size) {
					t.Fatalf("Stat = %d, %v", n, err)
				}
			}
		}
	}
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	be, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Uncommitted writes are invisible and aborted ones leave nothing.
	w := create(t, be, "a.data", "hello")
	if _, err := be.Open(ctx, "a.data"); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("uncommitted blob visible: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	// A writer left open (a crash) is swept by AbortIncomplete.
	create(t, be, "b.data", "half")
	if n, err := be.AbortIncomplete(ctx); err != nil || n != 1 {
		t.Fatalf("AbortIncomplete = %d, %v", n, err)
	}
	w3 := create(t, be, "c.data", "kept")
	if err := w3.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w3.Abort(); err != nil {
		t.Fatalf("abort after commit: %v", err)
	}
	var names []string
	err = be.List(ctx, func(name string, size int64) error {
		names = append(names, name)
		return nil
	})
	if err != nil || !slices.Equal(names, []string{"c.data"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	if err := be.Remove(ctx, "c.data"); err != nil {
		t.Fatal(err)
	}
	if err := be.Remove(ctx, "c.data"); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := be.Stat(ctx, "c.data"); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("stat removed: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b", "x y", string(make([]byte, 300))} {
		if _, err := be.Create(ctx, bad); err == nil {
			t.Fatalf("name %q accepted", bad)
		}
	}
	// tmp must exist (New creates it) and be empty: a failed ReadDir must not pass as empty.
	if ents, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(ents) != 0 {
		t.Fatalf("tmp: %v, %v", ents, err)
	}
}

// create starts a blob and writes content to it, failing the test on any error.
func create(t *testing.T, be *Backend, name, content string) blob.Writer {
	t.Helper()
	w, err := be.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatalf("Write(%q): %v", name, err)
	}
	return w
}
