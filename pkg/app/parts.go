package app

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamd/streamd/pkg/analysis"
	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/relay"
	"github.com/streamd/streamd/pkg/web"
)

// view is the viewer side: the hub and the relay that feeds it.
type view struct {
	*relay.Relay
	hub *hub.Hub
}

func newView(cfg *config.Config, log *slog.Logger, k *kafka.Conns, httpAddr func() string) *view {
	h := hub.New(hub.WithRingSize(cfg.Hub.RingSize), hub.WithMaxDelay(cfg.Hub.MaxDelay),
		hub.WithEncoder(web.EncodePart), hub.WithLogger(log.With("component", "hub")))
	group := func() string {
		if cfg.Kafka.Group != "" {
			return cfg.Kafka.Group
		}
		return relay.DefaultGroup(httpAddr())
	}
	r := relay.New(relay.Options{Topic: cfg.Kafka.Topic, Group: group, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Cameras: cameraIDs(cfg.Cameras), Logger: log}, k, h)
	return &view{Relay: r, hub: h}
}

// Reload makes new camera ids known before their first frame.
func (v *view) Reload(next *config.Config) { v.Register(cameraIDs(next.Cameras)) }

func cameraIDs(cams []config.CameraConfig) []string {
	ids := make([]string, 0, len(cams))
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	return ids
}

// analyze adapts the analysis to a reloaded configuration.
type analyze struct{ *analysis.Analysis }

func newAnalyze(cfg *config.Config, log *slog.Logger, k *kafka.Conns, clock func() time.Time) (analyze, error) {
	ac := cfg.Analyzer
	filters := map[string]events.ObjectFilter{}
	for _, f := range ac.Objects.Filters {
		filters[f.Label] = events.ObjectFilter{MinScore: f.MinScore, Threshold: f.Threshold, MinArea: f.MinArea, MaxArea: f.MaxArea}
	}
	an, err := analysis.New(analysis.Options{
		FramesTopic: cfg.Kafka.Topic, Group: ac.Group, SessionTimeout: ac.SessionTimeout,
		EventsTopic: ac.EventsTopic, SnapshotsTopic: ac.SnapshotsTopic, ActivityTopic: ac.ActivityTopic, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
		Analyzer: analyzer.Options{FPS: ac.FPS, FacesFPS: ac.Faces.FPS, MaxLag: ac.MaxLag, Now: clock,
			Tracker:    events.TrackerOptions{MinFrames: ac.MinFrames, Gap: ac.Gap, FaceGap: ac.Faces.Gap, MaxLength: orNone(cfg.Events.MaxLength)},
			ObjectsFPS: ac.Objects.FPS, ObjectsCPU: ac.Objects.MaxCPU,
			Objects: events.ObjectTrackerOptions{Labels: ac.Objects.Track, Filters: filters, Gap: ac.Objects.Gap, MaxLength: orNone(cfg.Events.MaxLength),
				Review: events.Review{AlertLabels: nonNil(cfg.Review.Alerts.Labels), AlertZones: cfg.Review.Alerts.RequiredZones}}},
		Motion: analysis.Motion{Threshold: ac.Motion.Threshold, MinArea: ac.Motion.MinArea, GlobalFraction: ac.Motion.GlobalFraction},
		Faces:  ac.Faces.Enabled, FaceCascade: ac.Faces.Cascade,
		Objects: ac.Objects.Enabled, ObjectModel: ac.Objects.Model, ObjectModelOptional: ac.Objects.Model == config.DefaultObjectModel,
		ObjectSize: ac.Objects.Size, ObjectWorkers: ac.Objects.Workers,
		Cameras: analysisCameras(cfg.Cameras), Logger: log,
	}, k)
	if err != nil {
		var bad *analysis.SettingError
		switch {
		case err == analysis.ErrNoOpenCV:
			return analyze{}, fmt.Errorf("role %q: %w", cfg.Role, err)
		case errors.As(err, &bad):
			return analyze{}, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return analyze{}, err
	}
	eventTopics(cfg, k)
	return analyze{an}, nil
}

// Reload makes the new configuration's camera settings known.
func (a analyze) Reload(next *config.Config) { a.Analysis.Reload(analysisCameras(next.Cameras)) }

func analysisCameras(cams []config.CameraConfig) []analysis.Camera {
	out := make([]analysis.Camera, 0, len(cams))
	for _, cc := range cams {
		var zones []events.Zone
		for _, z := range cc.Zones {
			ez := events.Zone{Name: z.Name, Inertia: z.Inertia}
			for _, p := range z.Points {
				ez.Points = append(ez.Points, [2]float64{p[0], p[1]})
			}
			zones = append(zones, ez)
		}
		out = append(out, analysis.Camera{ID: cc.ID, Off: !cc.Analyzed(), NoObjects: cc.Objects != nil && !*cc.Objects, Threshold: cc.Motion.Threshold, MinArea: cc.Motion.MinArea,
			FPS: cc.Motion.FPS, Masks: cc.Motion.Masks, Zones: zones})
	}
	return out
}

// nonNil keeps an empty list empty: package events reads a nil list as
// "the defaults", and review.alerts.labels: [] means no alerts.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
