//go:build nocv

package app

import (
	"fmt"
	"log/slog"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
)

// newCapture refuses: capture needs OpenCV, and this binary was built
// without it. Config validation refuses such a role first (exit 2); this is
// the backstop.
func newCapture(cfg *config.Config, _ *slog.Logger, _ *kafka.Conns) (Component, error) {
	return nil, fmt.Errorf("role %q needs OpenCV to capture, and this binary was built without OpenCV (-tags nocv)", cfg.Role)
}
