package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/redact"
)

// Webhook headers.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// keyed with the webhook's secret, as GitHub signs its webhooks.
	HeaderSignature = "X-Streamd-Signature"
	// HeaderTimestamp is the delivery's time in Unix seconds, the same
	// as the body's timestamp (which the signature covers).
	HeaderTimestamp = "X-Streamd-Timestamp"
	// HeaderEvent is the notification type: new, update or end.
	HeaderEvent = "X-Streamd-Event"
	// HeaderIdempotencyKey is the message's idempotency key.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// reservedHeaders may not be set by a webhook's headers: streamd sets them.
var reservedHeaders = []string{HeaderSignature, HeaderTimestamp, HeaderEvent, HeaderIdempotencyKey, "Content-Type", "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection"}

// ReservedHeader reports whether a webhook may not set header name.
func ReservedHeader(name string) bool {
	for _, h := range reservedHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// WebhookOptions is one webhook.
type WebhookOptions struct {
	// Name names the webhook in metrics, logs and its consumer group:
	// renaming it starts a new group (from the newest events).
	Name string
	// URL is where to POST: http or https.
	URL string
	// Headers are added to every request ("Name: value").
	Headers []string
	// Secret, if set, signs every body (HeaderSignature).
	Secret string
	// Timeout bounds one request; zero: DefaultTimeout.
	Timeout time.Duration
	// CAFile, if set, is the PEM bundle the receiver's certificate must
	// chain to instead of the system's roots; InsecureSkipVerify turns
	// verification off (testing only).
	CAFile             string
	InsecureSkipVerify bool
	// Rules choose what is sent; Retry how failures are retried.
	Rules Rules
	Retry Retry
}

// webhook POSTs notifications.
type webhook struct {
	o       WebhookOptions
	links   Links
	ua      string
	client  *http.Client
	url     string // redacted, for logs
	headers http.Header
}

func newWebhook(o WebhookOptions, links Links, version string) (*webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: url %q: want http:// or https:// and a host", o.Name, redact.URL(o.URL))
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	tlsCfg, err := clientTLS(o.CAFile, "", "", o.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", o.Name, err)
	}
	h := http.Header{}
	for i, line := range o.Headers {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			// Not quoted: the line may be a credential.
			return nil, fmt.Errorf("webhook %s: headers[%d]: want \"Name: value\"", o.Name, i)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.Proxy = nil // a receiver is reached directly: no proxy from the environment sees the payloads
	if version == "" {
		version = "dev"
	}
	return &webhook{o: o, links: links, ua: "streamd/" + version, url: redact.URL(o.URL), headers: h,
		client: &http.Client{Transport: tr, Timeout: o.Timeout,
			// A redirect is not followed: the body would go where the
			// configuration did not say (and a POST becomes a GET).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// clientTLS is the TLS configuration of a connection to a receiver or
// broker: the system's roots unless caFile says otherwise, verified
// unless insecure.
func clientTLS(caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in, for testing
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func (w *webhook) describe() string { return w.url }

// trouble is "": a webhook has no connection to lose; its failures are
// the runner's.
func (w *webhook) trouble() string { return "" }

// messages is one POST per notification.
func (w *webhook) messages(_ context.Context, _ events.Event, notes []Notification) []message {
	out := make([]message, 0, len(notes))
	for i := range notes {
		out = append(out, message{kind: "notification", note: &notes[i]})
	}
	return out
}

// Sign returns the signature header's value for body: "sha256=" and the
// hex HMAC-SHA256 of body keyed with secret. A receiver computes the same
// over the raw body it got and compares in constant time.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// body is a notification's JSON for this webhook, stamped now.
func (w *webhook) body(n *Notification, now time.Time) ([]byte, error) {
	ev, err := events.Marshal(n.Event)
	if err != nil {
		return nil, permanentError{fmt.Errorf("encode event %s: %w", n.Event.ID, err)}
	}
	return json.Marshal(WebhookBody{Type: n.Type, IdempotencyKey: n.Key, Timestamp: now.Unix(), Target: w.o.Name,
		Event: ev, URLs: w.links.For(n.Event)})
}

// deliver POSTs one notification: delivered on a 2xx; a 408, 425, 429 or
// 5xx or no answer is retried (after the Retry-After asked for, if any);
// any other answer is a refusal for good.
func (w *webhook) deliver(ctx context.Context, m message) error {
	now := time.Now()
	body, err := w.body(m.note, now)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("post to %s: %w", w.url, redact.Error(err))}
	}
	for k, vs := range w.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.ua)
	req.Header.Set(HeaderEvent, m.note.Type)
	req.Header.Set(HeaderIdempotencyKey, m.note.Key)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if w.o.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(w.o.Secret), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// Go's errors quote the URL (without its password, not its user
		// or query): name it redacted ourselves.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("post to %s: %w", w.url, redact.Error(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		err := fmt.Errorf("post to %s: %s", w.url, resp.Status)
		if after := retryAfter(resp.Header.Get("Retry-After"), now); after > 0 {
			return retryAfterError{err, after}
		}
		return err
	case code >= 300 && code < 400:
		return permanentError{fmt.Errorf("post to %s: %s to %s: webhooks do not follow redirects; configure the final URL", w.url, resp.Status, redact.URL(resp.Header.Get("Location")))}
	default:
		return permanentError{fmt.Errorf("post to %s: refused: %s", w.url, resp.Status)}
	}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
