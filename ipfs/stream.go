package ipfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// errRewound ends a superseded build: its reader was rewound and a new build started.
var errRewound = errors.New("ipfs: CAR stream rewound")

// CARStream is the CAR of a planned path as an io.ReadSeeker that is never held in memory or
// on disk: reads come from a WriteCAR running in a goroutine, and Seek(0, io.SeekStart)
// restarts the build, so an upload can resend the whole CAR to another provider. Seeks go to
// the start or the end only (the end's offset, the CAR's size, comes from the plan). Close
// it to stop the build.
type CARStream struct {
	ctx  context.Context
	path string
	plan CARPlan

	mu     sync.Mutex
	pr     *io.PipeReader
	done   chan struct{} // closed when the current build's goroutine has returned
	pos    int64
	atEnd  bool // after Seek(0, io.SeekEnd): reads are EOF until a rewind
	closed bool
}

// NewCARStream starts building path's CAR, as planned by PlanCAR.
func NewCARStream(ctx context.Context, path string, plan CARPlan) *CARStream {
	s := &CARStream{ctx: ctx, path: path, plan: plan}
	s.start()
	return s
}

func (s *CARStream) start() {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	s.pr, s.pos, s.done = pr, 0, done
	go func() {
		defer close(done)
		pw.CloseWithError(WriteCAR(s.ctx, s.path, s.plan, pw)) // nil: EOF for the reader
	}()
}

// Read reads the CAR; a build failure (ErrChanged, a read error) is the read's error.
func (s *CARStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	pr, closed, atEnd := s.pr, s.closed, s.atEnd
	s.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("ipfs: read of a closed CAR stream: %w", io.ErrClosedPipe)
	}
	if atEnd {
		return 0, io.EOF
	}
	n, err := pr.Read(p)
	s.mu.Lock()
	if pr == s.pr {
		s.pos += int64(n)
	}
	s.mu.Unlock()
	return n, err
}

// Seek rewinds to the start (restarting the build) or reports the CAR's size.
func (s *CARStream) Seek(offset int64, whence int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case offset == 0 && whence == io.SeekEnd:
		s.atEnd = true
		return s.plan.Size, nil
	case offset == 0 && whence == io.SeekCurrent:
		if s.atEnd {
			return s.plan.Size, nil
		}
		return s.pos, nil
	case offset == 0 && whence == io.SeekStart:
		if s.closed {
			return 0, fmt.Errorf("ipfs: rewind of a closed CAR stream: %w", io.ErrClosedPipe)
		}
		s.atEnd = false
		if s.pos == 0 {
			return 0, nil // the running build has not sent a byte yet
		}
		s.stop()
		s.start()
		return 0, nil
	}
	return 0, fmt.Errorf("ipfs: CAR stream seeks only to its start (asked %d from %d)", offset, whence)
}

// stop ends the current build and waits for its goroutine: its next write fails, so it
// returns after at most one chunk of work.
func (s *CARStream) stop() {
	s.pr.CloseWithError(errRewound)
	<-s.done
}

// Close stops the build and waits for it.
func (s *CARStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.stop()
	}
	return nil
}
