package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Stop budgets. A shutdown stops the components one at a time, in reverse
// start order, and each gets a budget of its own: a component that spends
// its budget is reported stuck, and the next one still gets its whole
// budget (until the shutdown's own bound runs out). The systemd unit's
// TimeoutStopSec (15 s) leaves room above ShutdownTimeout.
const (
	// ShutdownTimeout bounds how long Serve waits for a clean shutdown.
	ShutdownTimeout = 9 * time.Second
	// DefaultStopBudget is how long a component's Run may take to return
	// once its context is cancelled, unless it asks for more (StopBudget).
	DefaultStopBudget = 2 * time.Second
	// CloseBudget is how long a component's Close may take.
	CloseBudget = 2 * time.Second
	// lateGrace is what a component is still given once the shutdown's
	// bound has run out: enough for one that stops at once to stop cleanly
	// instead of being reported stuck for time others spent.
	lateGrace = 100 * time.Millisecond
)

// stopBudgeter is implemented by components that need a stop budget other
// than DefaultStopBudget (the recorder, which commits what it wrote).
type stopBudgeter interface {
	StopBudget() time.Duration
}

// Shutdown stops the components in reverse start order. For each, its Run
// is cancelled and awaited for the component's stop budget; once Run has
// returned, Close is called and awaited for CloseBudget. A component whose
// Run does not return within its budget is reported stuck and not closed:
// Close never races a running Run (Component's contract), and the process
// is exiting anyway. Shutdown is idempotent; later calls return the first
// call's result. Components that fail to close cleanly (a broker already
// gone, say) are logged; components that are stuck are the error. ctx's
// deadline bounds the whole shutdown.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		_ = a.notify.Stopping()
		// Scripts must not find a ready file for a process that stops.
		if a.readyFile != "" {
			_ = os.Remove(a.readyFile)
		}
		var errs []error
		// The watchdog (if any) was started last.
		for i := len(a.runs) - 1; i >= len(a.components); i-- {
			a.runs[i].cancel()
		}
		for i := len(a.components) - 1; i >= 0; i-- {
			c := a.components[i]
			if i < len(a.runs) {
				budget := DefaultStopBudget
				if b, ok := c.(stopBudgeter); ok {
					budget = b.StopBudget()
				}
				a.runs[i].cancel()
				if !awaitWithin(ctx, a.runs[i].done, budget) {
					errs = append(errs, fmt.Errorf("shutdown: %s did not stop within %s", c.Name(), budget))
					a.log.Error("shutdown: a component did not stop; not closing it", "component", c.Name(), "budget", budget)
					continue
				}
			}
			a.closeWithin(c)
		}
		a.shutdownErr = errors.Join(errs...)
		a.log.Info("streamd stopped")
	})
	return a.shutdownErr
}

// awaitWithin waits for done for at most budget, and no longer than ctx's
// deadline plus lateGrace. It reports whether done closed.
func awaitWithin(ctx context.Context, done <-chan struct{}, budget time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, max(time.Until(dl), 0)+lateGrace)
	}
	t := time.NewTimer(budget)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// closeWithin closes c and waits for at most CloseBudget. A Close that
// blocks longer is logged and left behind: its goroutine ends with the
// process, which is exiting.
func (a *App) closeWithin(c Component) {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	t := time.NewTimer(CloseBudget)
	defer t.Stop()
	select {
	case err := <-done:
		a.warnClose(c.Name(), err)
	case <-t.C:
		a.log.Error("shutdown: close did not return", "component", c.Name(), "budget", CloseBudget)
	}
}

func (a *App) warnClose(what string, err error) {
	if err != nil {
		a.log.Warn("shutdown: "+what+" did not close cleanly", "err", err)
	}
}
