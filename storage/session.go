package storage

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/warmstore/warmstore/pdp"
)

// Session is a persisted upload session, so that a provider daemon can resume or expire
// uploads across restarts. The store does not interpret State.
type Session struct {
	ID            string        `json:"id"`
	State         string        `json:"state"`
	Created       time.Time     `json:"created"`
	Updated       time.Time     `json:"updated"`
	ExpectedSize  uint64        `json:"expectedSize,omitempty"`
	ExpectedPiece *pdp.PieceCID `json:"expectedPiece,omitempty"`
	// Piece is set once the upload has been ingested.
	Piece *pdp.PieceCID `json:"piece,omitempty"`
}

// NewSessionID returns a random RFC 4122 version-4 UUID string.
func NewSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func checkSessionID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("storage: session id %q: %w", id, ErrInvalid)
	}
	for _, c := range id {
		if c <= ' ' || c == 0x7f || c == '/' {
			return fmt.Errorf("storage: session id %q: %w", id, ErrInvalid)
		}
	}
	return nil
}

// CreateSession persists a new session. An empty ID is replaced by NewSessionID; Created and
// Updated are set from the store's clock. It fails with ErrExists if the id is taken.
func (s *Store) CreateSession(sess Session) (Session, error) {
	if err := s.checkOpen("create session"); err != nil {
		return Session{}, err
	}
	if sess.ID == "" {
		sess.ID = NewSessionID()
	}
	if err := checkSessionID(sess.ID); err != nil {
		return Session{}, err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	k := key(prefixSession, []byte(sess.ID))
	ok, err := s.has(k)
	if err != nil {
		return Session{}, wrapErr("create session", err)
	}
	if ok {
		return Session{}, fmt.Errorf("storage: create session %s: %w", sess.ID, ErrExists)
	}
	now := s.now().UTC()
	sess.Created, sess.Updated = now, now
	return sess, s.putSession(sess)
}

func (s *Store) putSession(sess Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("storage: session %s: %w", sess.ID, err)
	}
	if err := s.db.Set(key(prefixSession, []byte(sess.ID)), v, syncWrite); err != nil {
		return fmt.Errorf("storage: session %s: %w", sess.ID, classify(err))
	}
	return nil
}

// Session loads a session (ErrNotFound if there is none).
func (s *Store) Session(id string) (Session, error) {
	if err := s.checkOpen("session"); err != nil {
		return Session{}, err
	}
	if err := checkSessionID(id); err != nil {
		return Session{}, err
	}
	v, closer, err := s.db.Get(key(prefixSession, []byte(id)))
	if errors.Is(err, pebble.ErrNotFound) {
		return Session{}, fmt.Errorf("storage: session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("storage: session %s: %w", id, classify(err))
	}
	defer closer.Close()
	var sess Session
	if err := json.Unmarshal(v, &sess); err != nil {
		return Session{}, fmt.Errorf("storage: session %s: decode: %w", id, err)
	}
	return sess, nil
}

// UpdateSession applies fn to the stored session and persists the result, setting Updated.
// fn may not change the ID. An error from fn aborts the update and is returned.
func (s *Store) UpdateSession(id string, fn func(*Session) error) (Session, error) {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	sess, err := s.Session(id)
	if err != nil {
		return Session{}, err
	}
	if err := fn(&sess); err != nil {
		return Session{}, err
	}
	if sess.ID != id {
		return Session{}, fmt.Errorf("storage: update session %s: id changed to %q: %w", id, sess.ID, ErrInvalid)
	}
	sess.Updated = s.now().UTC()
	return sess, s.putSession(sess)
}

// DeleteSession removes a session (ErrNotFound if there is none).
func (s *Store) DeleteSession(id string) error {
	if err := s.checkOpen("delete session"); err != nil {
		return err
	}
	if err := checkSessionID(id); err != nil {
		return err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	k := key(prefixSession, []byte(id))
	ok, err := s.has(k)
	if err != nil {
		return wrapErr("delete session", err)
	}
	if !ok {
		return fmt.Errorf("storage: delete session %s: %w", id, ErrNotFound)
	}
	if err := s.db.Delete(k, syncWrite); err != nil {
		return fmt.Errorf("storage: delete session %s: %w", id, classify(err))
	}
	return nil
}

// ExpiredSessions lists sessions not updated within maxAge of the store's clock.
func (s *Store) ExpiredSessions(maxAge time.Duration) ([]Session, error) {
	if err := s.checkOpen("expired sessions"); err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-maxAge)
	var out []Session
	err := s.scan([]byte(prefixSession), func(k, v []byte) error {
		var sess Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return fmt.Errorf("session %s: decode: %w", k[len(prefixSession):], err)
		}
		if sess.Updated.Before(cutoff) {
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: expired sessions: %w", err)
	}
	return out, nil
}
