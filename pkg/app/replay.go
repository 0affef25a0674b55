package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/replay"
	"github.com/streamd/streamd/pkg/web"
)

// replayClient names the replays' Kafka client. Its partition consumers
// buffer few records and fetch small first, so that a replay viewer costs
// about a megabyte, not the frames consumer's buffers.
const replayClient = "replay"

// Probe bounds when looking for a camera's records in a partition.
const (
	probeRecords = 512
	probeTimeout = 3 * time.Second
)

// replays plays back the frames topic for viewer nodes (web.Replays): it
// finds the partitions that hold a camera, seeks by capture time (the
// record timestamp), and hands caught-up replays over to the hub.
type replays struct {
	cfg   *config.Config
	kafka *kafkaConns
	hub   *hub.Hub
}

func newReplays(cfg *config.Config, k *kafkaConns, h *hub.Hub) *replays {
	k.want(replayClient, func(o *kafka.Options) { o.Buffered, o.FetchDefault = 2, 256<<10 })
	return &replays{cfg: cfg, kafka: k, hub: h}
}

// partitions returns the partitions that hold camera's frames: those the
// hub saw them on; otherwise the candidates of the clients' partitioners
// that hold a record of the camera at or after at (a node that restarted
// while the producer is down has seen nothing live).
func (r *replays) partitions(client sarama.Client, camera string, at time.Time) ([]int32, error) {
	if c, ok := r.hub.Camera(camera); ok {
		if seen := c.Partitions(); len(seen) > 0 {
			return seen, nil
		}
	}
	all, err := client.Partitions(r.cfg.Kafka.Topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", r.cfg.Kafka.Topic, err)
	}
	var found []int32
	for _, p := range kafka.CandidatePartitions(camera, int32(len(all)), nil) {
		from, err := kafka.OffsetAt(client, r.cfg.Kafka.Topic, p, at)
		if err != nil {
			return nil, err
		}
		// Look from a little before at too: at may be past the newest.
		from = max(from-probeRecords/2, 0)
		hit := false
		err = kafka.Scan(client, r.cfg.Kafka.Topic, p, from, probeRecords, probeTimeout, func(rec kafka.Record) bool {
			hit = isCamera(rec.Key, camera)
			return !hit
		})
		if err != nil {
			return nil, err
		}
		if hit {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return nil, web.ErrNothingRecorded
	}
	return found, nil
}

func isCamera(key []byte, camera string) bool {
	return string(key) == camera || len(key) == 0 && camera == frame.UnkeyedCamera
}

func (r *replays) history(ctx context.Context, camera string, at time.Time) (*kafka.History, []int32, sarama.Client, error) {
	client, err := r.kafka.await(ctx, replayClient)
	if err != nil {
		return nil, nil, nil, err
	}
	parts, err := r.partitions(client, camera, at)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := kafka.OpenHistory(client, r.cfg.Kafka.Topic, camera, parts, at, r.cfg.Kafka.MaxMessageBytes)
	return h, parts, client, err
}

// Open starts a replay; its first frame is read before it returns.
func (r *replays) Open(ctx context.Context, camera string, at time.Time, speed float64) (web.Replay, error) {
	h, parts, client, err := r.history(ctx, camera, at)
	if err != nil {
		return web.Replay{}, err
	}
	p, err := replay.New(h, replay.Options{Speed: speed, MaxFPS: r.cfg.Replay.MaxFPS, LiveAfter: func(seq uint64, capturedAt time.Time) (replay.Reader, bool) {
		c, ok := r.hub.Camera(camera)
		if !ok {
			return nil, false
		}
		return c.SubscribeAfter(seq, capturedAt)
	}})
	if err != nil {
		h.Close()
		return web.Replay{}, err
	}
	first, err := r.first(ctx, p, at)
	if err != nil {
		p.Close()
		return web.Replay{}, err
	}
	clamped := false
	if first.CapturedAt.Sub(at) > time.Second {
		oldest, err := r.oldest(client, camera, parts)
		clamped = err == nil && !oldest.IsZero() && at.Before(oldest)
	}
	return web.Replay{Reader: p, First: first, Clamped: clamped}, nil
}

// first reads a player's first frame; a camera that records nothing at or
// after at gets ErrNothingRecorded once ctx ends (unless it is live: then
// the next frame will come).
func (r *replays) first(ctx context.Context, p *replay.Player, at time.Time) (*frame.Frame, error) {
	f, err := p.First(ctx)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("%w at or after %s", web.ErrNothingRecorded, at.Format(time.RFC3339))
	}
	return nil, err
}

// FrameAt returns the first frame captured at or after at.
func (r *replays) FrameAt(ctx context.Context, camera string, at time.Time) (*frame.Frame, error) {
	h, _, _, err := r.history(ctx, camera, at)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	f, err := h.Next(wait)
	if err != nil {
		return nil, fmt.Errorf("%w at or after %s", web.ErrNothingRecorded, at.Format(time.RFC3339))
	}
	return f, nil
}

// oldest is the capture time of the oldest frame of camera held in parts:
// the first of its records from each partition's oldest offset (within
// the probe's bounds), else the partition's oldest record.
func (r *replays) oldest(client sarama.Client, camera string, parts []int32) (time.Time, error) {
	var oldest time.Time
	for _, p := range parts {
		var first, mine time.Time
		err := kafka.Scan(client, r.cfg.Kafka.Topic, p, 0, probeRecords, probeTimeout, func(rec kafka.Record) bool {
			if first.IsZero() {
				first = rec.Timestamp
			}
			if isCamera(rec.Key, camera) {
				mine = capturedAt(rec)
				return false
			}
			return true
		})
		if err != nil {
			return time.Time{}, err
		}
		t := mine
		if t.IsZero() {
			t = first
		}
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest, nil
}

// capturedAt is a record's capture time: its captured-at header, else its
// timestamp.
func capturedAt(rec kafka.Record) time.Time {
	f, err := frame.Decode(rec.Key, rec.Value, rec.Headers, rec.Timestamp, 0)
	if err != nil {
		return rec.Timestamp
	}
	return f.CapturedAt
}

// Range returns the oldest and newest capture times held for camera.
func (r *replays) Range(ctx context.Context, camera string) (oldest, newest time.Time, err error) {
	client, err := r.kafka.await(ctx, replayClient)
	if err != nil {
		return oldest, newest, err
	}
	parts, err := r.partitions(client, camera, time.Unix(0, 0))
	if err != nil {
		return oldest, newest, err
	}
	if oldest, err = r.oldest(client, camera, parts); err != nil {
		return oldest, newest, err
	}
	if c, ok := r.hub.Camera(camera); ok {
		if f := c.Latest(); f != nil {
			newest = f.CapturedAt
		}
	}
	if newest.IsZero() {
		// Not live here: the newest of its records among each
		// partition's last ones.
		for _, p := range parts {
			hwm, err := client.GetOffset(r.cfg.Kafka.Topic, p, sarama.OffsetNewest)
			if err != nil {
				return oldest, newest, err
			}
			err = kafka.Scan(client, r.cfg.Kafka.Topic, p, hwm-probeRecords, probeRecords, probeTimeout, func(rec kafka.Record) bool {
				if isCamera(rec.Key, camera) {
					if t := capturedAt(rec); t.After(newest) {
						newest = t
					}
				}
				return true
			})
			if err != nil {
				return oldest, newest, err
			}
		}
	}
	if oldest.IsZero() || newest.IsZero() {
		return oldest, newest, web.ErrNothingRecorded
	}
	return oldest, newest, nil
}
