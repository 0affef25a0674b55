package app

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/auth"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/web"
)

// httpServer is the web server of every role: health, readiness, metrics
// and status always; the page, streams, snapshots and the camera API when
// the role views (opts.Live is set).
type httpServer struct {
	opts web.Options
	log  *slog.Logger
	srv  *web.Server
}

func newHTTPServer(cfg *config.Config, log *slog.Logger, o web.Options) (*httpServer, error) {
	authn, err := newAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	o.Auth = authn
	o.Addr = cfg.HTTP.Listen
	o.WriteTimeout = cfg.HTTP.WriteTimeout
	o.UnsentLimit = cfg.HTTP.UnsentLimit
	o.Pprof = cfg.HTTP.Pprof
	o.ReadHeaderTimeout = cfg.HTTP.ReadHeaderTimeout
	o.IdleTimeout = cfg.HTTP.IdleTimeout
	o.MaxViewers = cfg.HTTP.MaxViewers
	o.MaxViewersPerIP = cfg.HTTP.MaxViewersPerIP
	o.MaxReplays = cfg.HTTP.MaxReplays
	o.MaxReplaysPerIP = cfg.HTTP.MaxReplaysPerIP
	o.TLSCertFile, o.TLSKeyFile = cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile
	o.TrustedProxies = parseCIDRs(cfg.HTTP.TrustedProxies)
	o.Logger = log.With("component", "http")
	return &httpServer{opts: o, log: log}, nil
}

func (h *httpServer) Name() string { return "http" }

// Start opens the listener, so that a busy port fails start-up.
func (h *httpServer) Start() error {
	srv, err := web.Start(h.opts)
	if err != nil {
		return err
	}
	h.srv = srv
	if w := h.openWarning(); w != "" {
		h.log.Warn(strings.ToUpper(w[:50])+w[50:], "http.listen", h.opts.Addr)
	}
	return nil
}

// openWarning is the warning that the server listens beyond loopback
// without authentication, or "".
func (h *httpServer) openWarning() string {
	if h.srv == nil || h.opts.Auth.Enabled() || isLoopback(h.srv.Addr()) {
		return ""
	}
	return "http is open to the network without authentication: anyone who can reach " + h.srv.Addr() +
		" can watch every camera; configure auth.tokens or auth.users, or listen on 127.0.0.1"
}

func (h *httpServer) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Reload re-reads the TLS certificate (renewed certificates take effect
// without a restart); a bad one is logged and the one in use kept.
func (h *httpServer) Reload(*config.Config) {
	if h.srv == nil {
		return
	}
	if err := h.srv.ReloadCert(); err != nil {
		h.log.Error("keeping the TLS certificate in use", "err", err)
	}
}

// url is the address to open in a browser.
func (h *httpServer) url() string {
	u := BrowserURL(h.addr())
	if h.srv != nil && h.srv.TLS() {
		u = "https" + strings.TrimPrefix(u, "http")
	}
	return u
}

// Collect reports the open client connections.
func (h *httpServer) Collect(s *metrics.Snapshot) {
	if h.srv != nil {
		s.HTTPConnections = h.srv.Connections()
	}
}
func (h *httpServer) Ready() error { return nil }

// Close ends every stream and stops the server; it runs first at shutdown.
func (h *httpServer) Close() error {
	if h.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.srv.Shutdown(ctx)
}

// addr is the address the server listens on ("" before Start).
func (h *httpServer) addr() string {
	if h.srv == nil {
		return ""
	}
	return h.srv.Addr()
}

// alive reports whether the server still answers /healthz, for the
// systemd watchdog.
func (h *httpServer) alive() error {
	host, port, err := net.SplitHostPort(h.addr())
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	scheme := "http://"
	if h.srv.TLS() {
		// The watchdog asks whether the server answers, not who it is.
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback self-check
		scheme = "https://"
	}
	resp, err := c.Get(scheme + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "healthz answered " + http.StatusText(e.code) }

// newAuthenticator builds the authenticator from the (validated) config.
func newAuthenticator(c config.AuthConfig) (*auth.Authenticator, error) {
	tokens := make([]auth.Token, 0, len(c.Tokens))
	for _, t := range c.Tokens {
		tokens = append(tokens, auth.Token{Name: t.Name, Secret: t.Token, Cameras: t.Cameras})
	}
	users := make([]auth.User, 0, len(c.Users))
	for _, u := range c.Users {
		users = append(users, auth.User{Name: u.Name, PasswordBcrypt: u.PasswordBcrypt, Cameras: u.Cameras})
	}
	return auth.New(tokens, users)
}

// isLoopback reports whether addr listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() || host == "localhost"
}

// parseCIDRs parses ranges that config validation already checked.
func parseCIDRs(cidrs []string) []*net.IPNet {
	var out []*net.IPNet
	for _, c := range cidrs {
		if _, n, err := net.ParseCIDR(c); err == nil {
			out = append(out, n)
		}
	}
	return out
}
