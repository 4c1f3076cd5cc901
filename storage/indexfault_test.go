package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestIndexWriteFailure makes the index's WAL writes fail (pebble vfs/errorfs) while a piece is
// committed: the ingest fails with ErrIO, its blobs are removed, and after a restart on a
// healthy disk the piece is not visible and earlier pieces are intact.
func TestIndexWriteFailure(t *testing.T) {
	dir := t.TempDir()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	// Pebble treats a WAL write failure as fatal; in production the store's logger exits the
	// process, here a panic stands for the exit so the test can restart the store.
	s, err := Open(dir, Options{PebbleOptions: &pebble.Options{
		FS:     errorfs.Wrap(vfs.Default, toggle),
		Logger: panickingLogger{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := payload(1, 100_000), payload(2, 100_000)
	pa := ingest(t, s, a).Piece
	toggle.On()
	var ingestErr error
	func() {
		// Either a returned error or pebble's fatal exit; nothing of the piece may survive.
		defer func() {
			if r := recover(); r != nil {
				ingestErr = errors.New("pebble fatal")
			}
		}()
		_, ingestErr = s.Ingest(context.Background(), bytes.NewReader(b), nil)
	}()
	if ingestErr == nil {
		t.Fatal("ingest succeeded although the index could not be written")
	}
	t.Logf("ingest error: %v", ingestErr)
	if ingestErr.Error() != "pebble fatal" && !errors.Is(ingestErr, ErrIO) {
		t.Fatalf("error %v is not ErrIO", ingestErr)
	}
	toggle.Off()
	func() {
		defer func() { recover() }()
		s.Close()
	}()

	s2 := openTest(t, dir, Options{})
	checkPiece(t, s2, pa, a)
	if hasPiece(t, s2, commP(t, b)) {
		t.Fatal("piece whose index batch failed is visible")
	}
	assertConsistent(t, s2, dir)
	checkPiece(t, s2, ingest(t, s2, b).Piece, b)
}

type panickingLogger struct{}

func (panickingLogger) Infof(format string, args ...any)  {}
func (panickingLogger) Errorf(format string, args ...any) {}
func (panickingLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
