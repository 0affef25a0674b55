package app

import (
	"context"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/metrics"
)

// Component is one part of a running streamd: the embedded broker, the
// Kafka connections, the capture of cameras, the viewers' fan-out, the HTTP
// server. A role is a list of components; App starts them in order, runs
// them, and closes them in reverse order.
//
// The lifecycle, called by App only:
//   - Start opens what must be open before the process reports itself
//     started (a listener, a broker). An error stops start-up: the
//     components started before it are closed again.
//   - Run does the component's work in its own goroutine until ctx ends,
//     then returns nil. Any other error is fatal: the process shuts down
//     and exits non-zero, so that systemd (Restart=on-failure) acts on it.
//     Run may return nil early when its work is done.
//   - Ready says whether the component does its job now (nil) or why not;
//     /readyz and /api/status report it.
//   - Run returns within its stop budget once ctx is cancelled
//     (DefaultStopBudget, or what the component's StopBudget method
//     says). A Run that does not is reported stuck, and its component is
//     not closed.
//   - Close runs after Run returned (or was never called), releases
//     everything, and must be safe to call once after a failed Start.
type Component interface {
	Name() string
	Start() error
	Run(ctx context.Context) error
	Ready() error
	Close() error
}

// Optional component interfaces.
type (
	// collector adds the component's counters to a metrics scrape.
	collector interface {
		Collect(s *metrics.Snapshot)
	}
	// reloader applies a reloaded configuration (SIGHUP): the cameras.
	reloader interface {
		Reload(next *config.Config)
	}
	// degrader says what the component cannot do now while it is still
	// ready ("" when nothing): the notifier's targets that are down.
	// /readyz and /api/status show it as "degraded: ..." and stay 200.
	degrader interface {
		Degraded() string
	}
)
