package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/pkg/lograte"
)

// Server is a running HTTP server.
type Server struct {
	o      Options
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	done   chan struct{}
	mu     sync.Mutex
	closed bool
	// base is the parent of every request context; cancelling it ends
	// all streams at once on shutdown.
	base       context.Context
	cancelBase context.CancelFunc

	authLog *lograte.Limiter
	page    *template.Template // index.html, nil without one
	camPage *template.Template // camera.html, nil without one
	// reviewPage is review.html, nil without one.
	reviewPage *template.Template

	// Admission: open streams (and the other long-lived responses that
	// count as viewers), open replays, MP4 exports encoding now.
	viewers, replays, exports *limiter

	conns atomic.Int64 // open client connections
	cert  atomic.Pointer[tls.Certificate]
}

// Start opens the listener and serves in the background.
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen on %s: %w", o.Addr, err)
	}
	s := &Server{o: o, ln: ln, log: o.Logger, done: make(chan struct{}), authLog: lograte.New(time.Second),
		viewers: newLimiter(o.MaxViewers, o.MaxViewersPerIP, "server at its viewer limit (%d)", "too many streams from %s (limit %d)"),
		replays: newLimiter(o.MaxReplays, o.MaxReplaysPerIP, "server at its replay limit (%d)", "too many replays from %s (limit %d)"),
		exports: newLimiter(o.MaxExports, 0, "server at its export limit (%d, recording.max_exports)", ""),
	}
	if o.Static != nil {
		if _, err := fs.Stat(o.Static, "index.html"); err == nil {
			if s.page, err = template.ParseFS(o.Static, "index.html"); err != nil {
				ln.Close()
				return nil, fmt.Errorf("http: parse index page: %w", err)
			}
		}
		if _, err := fs.Stat(o.Static, "camera.html"); err == nil {
			if s.camPage, err = template.ParseFS(o.Static, "camera.html"); err != nil {
				ln.Close()
				return nil, fmt.Errorf("http: parse camera page: %w", err)
			}
		}
		if _, err := fs.Stat(o.Static, "review.html"); err == nil {
			if s.reviewPage, err = template.ParseFS(o.Static, "review.html"); err != nil {
				ln.Close()
				return nil, fmt.Errorf("http: parse review page: %w", err)
			}
		}
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &http.Server{
		BaseContext: func(net.Listener) context.Context { return s.base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		Handler: s.Router(),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Add(-1)
			}
		},
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
		// No global WriteTimeout: streams are long-lived, and each part
		// gets its own write deadline instead.
	}
	if o.TLSCertFile != "" {
		if err := s.ReloadCert(); err != nil {
			ln.Close()
			return nil, err
		}
		s.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		}
	}
	go func() {
		defer close(s.done)
		serve := s.srv.Serve
		if s.srv.TLSConfig != nil {
			// ServeTLS also sets up HTTP/2 (ALPN h2).
			serve = func(l net.Listener) error { return s.srv.ServeTLS(l, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return s, nil
}

// ReloadCert reads the TLS certificate and key again (SIGHUP, after a
// renewal); on error the certificate in use stays.
func (s *Server) ReloadCert() error {
	if s.o.TLSCertFile == "" {
		return nil
	}
	c, err := tls.LoadX509KeyPair(s.o.TLSCertFile, s.o.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("http tls: load %s and %s: %w", s.o.TLSCertFile, s.o.TLSKeyFile, err)
	}
	s.cert.Store(&c)
	return nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.o.TLSCertFile != "" }

// Connections returns the client connections open now.
func (s *Server) Connections() int64 { return s.conns.Load() }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and ends open streams (their request
// contexts are cancelled), waiting until ctx ends at most. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// Streams never become idle, so Shutdown alone would wait for ctx:
	// end them through their base context, then shut down.
	s.cancelBase()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
