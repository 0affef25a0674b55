package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConnsWithoutClients(t *testing.T) {
	var status []string
	k := NewConns(ConnsOptions{Serving: "serving: role x", Status: func(s string) { status = append(status, s) }})
	k.Ensure("t", TopicOptions{})
	k.Ensure("t", TopicOptions{Partitions: 3})
	if len(k.topics) != 1 || k.topics[0].opts.Partitions != 0 {
		t.Errorf("topics = %+v, want t once, as first asked", k.topics)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	wait, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if _, err := k.Await(wait, "nobody"); err == nil || !strings.Contains(err.Error(), "no client") {
		t.Errorf("Await of a client never asked for: %v", err)
	}
	if err := k.Ready(); err != nil {
		t.Errorf("Ready = %v, want nil with no clients", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if len(status) != 1 || status[0] != "serving: role x" {
		t.Errorf("status = %q", status)
	}
}

func TestConnsTLSErrorIsFatalAndAwaitEnds(t *testing.T) {
	bad := errors.New("no key")
	k := NewConns(ConnsOptions{TLS: func() (*tls.Config, error) { return nil, bad }})
	k.Want("a", nil)
	if err := k.Ready(); err == nil {
		t.Error("Ready before connecting = nil")
	}
	if err := k.Run(context.Background()); !errors.Is(err, bad) {
		t.Errorf("Run = %v, want the TLS error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.Await(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Await after ctx ended = %v", err)
	}
}
