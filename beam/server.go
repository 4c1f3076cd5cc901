package beam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is an Edge running on a listener: Run in the background and Handler served over
// HTTP. It is what `sp devnet` (or a test) starts with one call.
type Server struct {
	Edge *Edge
	url  string
	srv  *http.Server
	stop context.CancelFunc
	run  chan error
	serv chan error
}

// Start opens an edge (New), starts Run and serves it on listen (e.g. "127.0.0.1:0").
func Start(ctx context.Context, listen string, cfg Config) (*Server, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("beam: listen %s: %w", listen, err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{Edge: e, url: "http://" + ln.Addr().String(), stop: stop, run: make(chan error, 1), serv: make(chan error, 1),
		srv: &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 30 * time.Second}}
	go func() { s.run <- e.Run(rctx) }()
	go func() { s.serv <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the edge's base URL.
func (s *Server) URL() string { return s.url }

// Close stops serving, lets Run send its last usage report, and closes the edge.
func (s *Server) Close(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.serv; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.stop()
	return errors.Join(err, <-s.run, s.Edge.Close())
}
