//go:build !nocv

package app

import (
	"log/slog"

	"github.com/streamd/streamd/pkg/capture"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
)

// cameras adapts the capture supervisor to a reloaded configuration.
type cameras struct{ *capture.Supervisor }

func newCapture(cfg *config.Config, log *slog.Logger, k *kafka.Conns) (Component, error) {
	return cameras{capture.NewSupervisor(capture.SupervisorOptions{Topic: cfg.Kafka.Topic, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Cameras: captureOptions(cfg.Cameras), Logger: log}, k)}, nil
}

// Reload applies the new configuration's cameras.
func (c cameras) Reload(next *config.Config) { c.Supervisor.Reload(captureOptions(next.Cameras)) }

func captureOptions(cams []config.CameraConfig) []capture.Options {
	out := make([]capture.Options, 0, len(cams))
	for _, cc := range cams {
		out = append(out, capture.Options{ID: cc.ID, Source: cc.Source, Loop: cc.Loop, FPS: cc.FPS, Width: cc.Width, Height: cc.Height, Quality: cc.Quality,
			Substream: capture.Substream{Width: cc.Substream.Width, Quality: cc.Substream.Quality, FPS: cc.Substream.FPS}})
	}
	return out
}
