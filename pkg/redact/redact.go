// Package redact removes credentials from URLs and from text that may
// quote URLs, before they reach a log line, an error, an API answer, a
// metric label or the page.
//
// A camera source such as rtsp://admin:hunter2@10.0.0.5/stream, a webhook
// URL with a token in its query, or an MQTT URL with a user and password
// carries its credentials inside the string that names it; every place
// that shows such a string shows it through URL or Text. Both are pure
// functions of their input, cheap enough for every log line (logs are rate
// limited where they repeat).
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces what is removed.
const Mask = "***"

// secretParams are query parameters whose value is a credential, compared
// in lower case: what cameras (pwd, passwd), webhooks (token, sig) and
// APIs (api_key, access_token) put in URLs.
var secretParams = []string{
	"password", "passwd", "pass", "pwd", "secret", "token", "access_token", "auth", "key", "apikey", "api_key",
	"sig", "signature", "credentials",
}

// URL returns s with the userinfo of a URL (user and password) and the
// values of query parameters that name credentials replaced by Mask:
// "rtsp://admin:hunter2@cam/s?pwd=x" gives "rtsp://***@cam/s?pwd=***".
// Anything that is not a URL with a scheme ("testpattern", a file path, a
// device) is returned as it is, and so is a URL with nothing to hide.
func URL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		// Not parseable (a bad escape, a control character): fall back
		// on the textual rules, which need no parse.
		return Text(s)
	}
	changed := false
	if u.User != nil {
		u.User = url.User(Mask)
		changed = true
	}
	if u.RawQuery != "" {
		q := redactQuery(u.RawQuery)
		if q != u.RawQuery {
			u.RawQuery = q
			changed = true
		}
	}
	if !changed {
		return s
	}
	// url.User escapes "*": write the mask back as it is.
	return strings.Replace(u.String(), "%2A%2A%2A@", Mask+"@", 1)
}

// redactQuery masks the values of credential parameters in a raw query,
// keeping everything else byte for byte.
func redactQuery(raw string) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if ok && isSecretParam(k) {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

func isSecretParam(k string) bool {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	k = strings.ToLower(k)
	for _, s := range secretParams {
		if k == s {
			return true
		}
	}
	return false
}

// userinfoInText matches the userinfo of a URL inside any text: a scheme,
// "://", then anything up to an "@" that comes before the host ends.
var userinfoInText = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@"'<>]+@`)

// queryInText matches a credential query parameter inside any text: its
// value runs to the next delimiter, or to a ": " after it (an error
// message's "post to <url>: <why>"), which is kept.
var queryInText = regexp.MustCompile(`(?i)([?&](?:` + strings.Join(secretParams, "|") + `)=)[^\s&#"'<>]*?(:\s|[\s&#"'<>]|$)`)

// Text returns s with every URL's userinfo and credential query values
// replaced by Mask, wherever URLs appear in it: an error from a library
// that quotes the URL it failed on, a state string, a log message.
func Text(s string) string {
	if !strings.Contains(s, "://") && !strings.ContainsAny(s, "?&") {
		return s
	}
	s = userinfoInText.ReplaceAllString(s, "${1}"+Mask+"@")
	return queryInText.ReplaceAllString(s, "${1}"+Mask+"${2}")
}

// Error returns err's message with Text applied; nil for nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := Text(msg); r != msg {
		return redactedError{msg: r, err: err}
	}
	return err
}

// redactedError is an error whose message was redacted; it still unwraps
// to the original, so errors.Is and errors.As work.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
