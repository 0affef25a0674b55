// Package sdnotify speaks systemd's service notification protocol
// (sd_notify): READY=1 when the service is up, STOPPING=1 when it shuts
// down, STATUS= lines, and WATCHDOG=1 keep-alives. Outside systemd (no
// NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends notifications to the socket systemd named.
type Notifier struct {
	socket string // empty: not under systemd
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET (may be empty: a no-op).
func FromEnv() *Notifier { return &Notifier{socket: os.Getenv("NOTIFY_SOCKET")} }

// Enabled reports whether a notification socket is set.
func (n *Notifier) Enabled() bool { return n.socket != "" }

// Notify sends one state string, such as "READY=1" or "STATUS=...".
func (n *Notifier) Notify(state string) error {
	if n.socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' { // abstract namespace
		addr.Name = "\x00" + addr.Name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// Ready tells systemd the service is up.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells systemd the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Reloading tells systemd the service reloads its configuration; call Ready
// when done.
func (n *Notifier) Reloading() error { return n.Notify("RELOADING=1") }

// Status sets the status line `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Notify("STATUS=" + s) }

// WatchdogInterval returns how often to send WATCHDOG=1: half the interval
// systemd set in $WATCHDOG_USEC (for this process, per $WATCHDOG_PID), or 0
// when no watchdog is configured.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Watchdog sends WATCHDOG=1 every interval while alive() returns true,
// until ctx ends. A process whose alive check fails stops sending, and
// systemd restarts it.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration, alive func() bool) {
	if interval <= 0 || !n.Enabled() {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				_ = n.Notify("WATCHDOG=1")
			}
		}
	}
}
