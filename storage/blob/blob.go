// Package blob defines the byte-storage interface under the piece store: named, immutable
// blobs that become visible atomically when committed. It is shaped so that both a local
// directory (package fsbackend) and an S3-compatible object store (multipart upload, complete,
// ranged GET) can implement it.
package blob

import (
	"context"
	"errors"
	"io"
)

// ErrNotExist reports that no committed blob has the given name.
var ErrNotExist = errors.New("blob: does not exist")

// Backend stores immutable named blobs.
//
// A blob is written through a Writer and is invisible to Open, Stat and List until Commit
// returns nil; after that it is durable (it survives a crash or power loss). Commit replaces
// any blob of the same name atomically. Names are flat, made of [A-Za-z0-9._-].
type Backend interface {
	// Create starts writing the blob name. Nothing is visible until Commit.
	Create(ctx context.Context, name string) (Writer, error)
	// Open opens a committed blob for random-access reads.
	Open(ctx context.Context, name string) (Reader, error)
	// Stat returns the size of a committed blob, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, name string) (int64, error)
	// Remove deletes a committed blob durably; removing a missing blob returns an error
	// wrapping ErrNotExist.
	Remove(ctx context.Context, name string) error
	// List calls fn for every committed blob, in no particular order.
	List(ctx context.Context, fn func(name string, size int64) error) error
	// AbortIncomplete discards every write that was started but never committed or aborted
	// (temporary files left by a crash; stale multipart uploads on an object store). Call it
	// only while no writer is in flight. It returns how many were discarded.
	AbortIncomplete(ctx context.Context) (int, error)
}

// Writer receives the bytes of one blob.
type Writer interface {
	io.Writer
	// Commit makes the blob durable and visible under its name. After Commit (successful or
	// not) the Writer must not be used again except for Abort, which is then a no-op.
	Commit() error
	// Abort discards the blob. It is safe to call after Commit and more than once.
	Abort() error
}

// Reader reads one committed blob.
type Reader interface {
	io.ReaderAt
	// Size is the blob's length in bytes.
	Size() int64
	Close() error
}
