// Package auth checks who may watch: bearer tokens (in the Authorization
// header or a token query parameter, so that an <img src> can carry one) and
// HTTP basic users with bcrypt password hashes, each optionally limited to a
// list of cameras. Secrets are compared in constant time and never logged.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Token is a bearer token and what it may watch.
type Token struct {
	Name    string   // shown in logs instead of the secret
	Secret  string   // at least 16 characters
	Cameras []string // empty: every camera
}

// User is an HTTP basic user and what it may watch.
type User struct {
	Name           string
	PasswordBcrypt string // from `htpasswd -bnBC 10 "" PASSWORD | tr -d ':'` or any bcrypt tool
	Cameras        []string
}

// Principal is an authenticated caller.
type Principal struct {
	Name    string
	cameras map[string]bool // nil: every camera
}

// Allowed reports whether the principal may watch camera.
func (p *Principal) Allowed(camera string) bool { return p.cameras == nil || p.cameras[camera] }

// AllCameras reports whether the principal may watch every camera.
func (p *Principal) AllCameras() bool { return p.cameras == nil }

// Errors from Authenticate.
var (
	ErrNoCredentials  = errors.New("credentials required")
	ErrBadCredentials = errors.New("wrong credentials")
)

type token struct {
	digest [32]byte
	p      *Principal
}

type user struct {
	hash []byte
	p    *Principal
}

// Authenticator checks requests against the configured tokens and users.
type Authenticator struct {
	tokens []token
	users  map[string]user

	// Verified basic credentials, by keyed digest: bcrypt is slow by
	// design and the page polls the API every second.
	mu    sync.Mutex
	key   [32]byte
	cache map[[32]byte]cached
}

type cached struct {
	p       *Principal
	expires time.Time
}

// CacheFor is how long a verified basic login is remembered.
const CacheFor = 5 * time.Minute

// New checks the tokens and users and returns an Authenticator. With none,
// it allows everyone (Enabled reports false).
func New(tokens []Token, users []User) (*Authenticator, error) {
	a := &Authenticator{users: map[string]user{}, cache: map[[32]byte]cached{}}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, fmt.Errorf("auth: random key: %w", err)
	}
	for i, t := range tokens {
		if len(t.Secret) < 16 {
			return nil, fmt.Errorf("auth: token %d (%q): secret must be at least 16 characters", i, t.Name)
		}
		a.tokens = append(a.tokens, token{digest: sha256.Sum256([]byte(t.Secret)), p: principal(t.Name, t.Cameras)})
	}
	for i, u := range users {
		if u.Name == "" || strings.Contains(u.Name, ":") {
			return nil, fmt.Errorf("auth: user %d: name must be set and contain no ':'", i)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordBcrypt)); err != nil {
			return nil, fmt.Errorf("auth: user %q: password_bcrypt is not a bcrypt hash: %w", u.Name, err)
		}
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("auth: user %q appears twice", u.Name)
		}
		a.users[u.Name] = user{hash: []byte(u.PasswordBcrypt), p: principal(u.Name, u.Cameras)}
	}
	return a, nil
}

func principal(name string, cameras []string) *Principal {
	p := &Principal{Name: name}
	if len(cameras) > 0 {
		p.cameras = map[string]bool{}
		for _, c := range cameras {
			p.cameras[c] = true
		}
	}
	return p
}

// Enabled reports whether any credentials are configured.
func (a *Authenticator) Enabled() bool { return len(a.tokens) > 0 || len(a.users) > 0 }

// HasUsers reports whether basic users are configured (for the
// WWW-Authenticate challenge).
func (a *Authenticator) HasUsers() bool { return len(a.users) > 0 }

// everyone is the principal when authentication is off.
var everyone = &Principal{Name: "anonymous"}

// Anyone returns the principal of requests when authentication is off: it
// may watch every camera.
func Anyone() *Principal { return everyone }

// Authenticate returns who made the request: from "Authorization: Bearer",
// the "token" query parameter, or "Authorization: Basic".
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	if !a.Enabled() {
		return everyone, nil
	}
	authz := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(authz, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return a.checkToken(strings.TrimSpace(rest))
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return a.checkToken(t)
	}
	if name, pass, ok := r.BasicAuth(); ok {
		return a.checkUser(name, pass)
	}
	return nil, ErrNoCredentials
}

func (a *Authenticator) checkToken(secret string) (*Principal, error) {
	d := sha256.Sum256([]byte(secret))
	var found *Principal
	for _, t := range a.tokens { // no early exit: same time for every token
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = t.p
		}
	}
	if found == nil {
		return nil, ErrBadCredentials
	}
	return found, nil
}

func (a *Authenticator) checkUser(name, pass string) (*Principal, error) {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.cache[k]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.p, nil
	}
	a.mu.Unlock()
	u, ok := a.users[name]
	if !ok {
		// Spend the same time as for a real user.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(pass)) != nil {
		return nil, ErrBadCredentials
	}
	a.mu.Lock()
	if len(a.cache) > 10000 { // bounded: forget everything rather than grow
		clear(a.cache)
	}
	a.cache[k] = cached{p: u.p, expires: now.Add(CacheFor)}
	a.mu.Unlock()
	return u.p, nil
}

// dummyHash is bcrypt("not a password", cost 10), compared against for
// unknown users so that timing does not reveal which names exist.
var dummyHash = []byte("$2a$10$EWQ6wHXdEsG9c/Y7S706CeU31/MSWb5UWD2wr0jRbJK6ht3oe4Mhi")
