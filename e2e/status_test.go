//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// status is the answer of GET /api/status.
type status struct {
	Role       string `json:"role"`
	Version    string `json:"version"`
	Ready      bool   `json:"ready"`
	Components []struct {
		Name  string `json:"name"`
		Ready string `json:"ready"`
	} `json:"components"`
	Cameras []cameraStatus `json:"cameras"`
	Reload  struct {
		Count         int      `json:"count"`
		LastError     string   `json:"last_error"`
		RestartNeeded []string `json:"restart_needed"`
	} `json:"reload"`
}

// cameraStatus is one of the producer's capture cameras in /api/status.
type cameraStatus struct {
	ID        string  `json:"id"`
	State     string  `json:"state"` // starting | streaming | retrying: <reason> | finished
	Captured  uint64  `json:"captured"`
	Published uint64  `json:"published"`
	Dropped   uint64  `json:"dropped"`
	EncodeMS  float64 `json:"encode_ms"`
}

// camera returns the capture camera id, or false.
func (s status) camera(id string) (cameraStatus, bool) {
	for _, c := range s.Cameras {
		if c.ID == id {
			return c, true
		}
	}
	return cameraStatus{}, false
}

// cameraIDs lists the capture cameras in order.
func (s status) cameraIDs() []string {
	ids := []string{}
	for _, c := range s.Cameras {
		ids = append(ids, c.ID)
	}
	return ids
}

func (s status) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// status fetches /api/status, which must answer 200 with JSON.
func (p *proc) status(t *testing.T) status {
	t.Helper()
	var s status
	if code := p.getJSON(t, "/api/status", &s); code != http.StatusOK {
		t.Fatalf("%s: /api/status answered %d", p.name, code)
	}
	return s
}

// waitStatus polls /api/status until cond holds, failing after timeout with
// what was last seen.
func (p *proc) waitStatus(t *testing.T, what string, timeout time.Duration, cond func(status) bool) status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.status(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: not within %v; /api/status: %s", p.name, what, timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
