package app

import (
	"context"
	"log/slog"

	"github.com/streamd/streamd/pkg/broker"
	"github.com/streamd/streamd/pkg/config"
)

// embeddedBroker is the in-process Kafka-protocol broker of the all-in-one
// default. It starts first and closes last.
type embeddedBroker struct {
	opts broker.Options
	b    *broker.Broker
}

func newEmbeddedBroker(cfg *config.Config, log *slog.Logger) *embeddedBroker {
	return &embeddedBroker{opts: broker.Options{
		Listen:          cfg.Embedded.Listen,
		DataDir:         cfg.Embedded.DataDir,
		SyncWrites:      cfg.Embedded.SyncWrites,
		SegmentBytes:    cfg.Embedded.SegmentBytes,
		RetentionCheck:  cfg.Embedded.RetentionCheck,
		MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Logger:          log.With("component", "broker"),
	}}
}

func (e *embeddedBroker) Name() string { return "broker" }

func (e *embeddedBroker) Start() error {
	b, err := broker.Start(e.opts)
	if err != nil {
		return err
	}
	e.b = b
	return nil
}

func (e *embeddedBroker) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (e *embeddedBroker) Ready() error                  { return nil }

func (e *embeddedBroker) Close() error {
	if e.b != nil {
		e.b.Close()
	}
	return nil
}

// addr is the broker's address once started.
func (e *embeddedBroker) addr() string {
	if e.b == nil {
		return ""
	}
	return e.b.Addr()
}
