// Package playback is a viewer node's playback of what Kafka holds for a
// camera: it finds the partitions that hold a camera's frames (probing the
// candidates of the producers' partitioners), scans them for a camera's
// oldest and newest frame, seeks by capture time, and builds the one
// timeline a replay or an export reads: the recording tiers (reduced and
// full, found through package recindex) while the time asked for is older
// than what the frames topic holds, crossing into the frames topic where it
// begins (record.Timeline), and on into the live stream (package replay).
// It also exports a range of that timeline as an MP4 (export_cv.go).
//
// It may not write to Kafka, read the configuration (it takes Options),
// or serve HTTP itself: it implements web.Replays and web.Recordings.
// Pacing is package replay's; merging tiers and crossing are package
// record's pure logic; it composes them with the Kafka reads.
package playback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/hub"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/recindex"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/replay"
	"github.com/streamd/streamd/pkg/web"
)

// Options configures Replays. FramesTopic must be set; the recording's
// topics only when there is a recording index.
type Options struct {
	// FramesTopic is the topic of the cameras' frames.
	FramesTopic string
	// MaxMessageBytes bounds a record read; zero: kafka.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxFPS caps a replay's output rate; zero: replay.DefaultMaxFPS.
	MaxFPS float64
	// FullTopic and ReducedTopic are the recording tiers' topics.
	FullTopic, ReducedTopic string
	// Recorder, if set, says how far a recorder in this process is with
	// each camera (from recorder.Progress); Storage then reports each
	// camera's recorder lag and lost frames from it. Where the recorder
	// runs elsewhere (nil), they come from the progress records the
	// recorders write to the index topic.
	Recorder func() map[string]RecorderProgress
	// Preset and CRF tune exports' H.264 encoder (package video's
	// Options); zero values take its defaults.
	Preset string
	CRF    int
}

// RecorderProgress is how far the recorder of this process is with a
// camera.
type RecorderProgress struct {
	// RecordedUntil is the capture time the camera is recorded up to.
	RecordedUntil time.Time
	// Lost counts frames never recorded: retention removed them first.
	Lost uint64
}

// Client names the replays' Kafka client. Its partition consumers
// buffer few records and fetch small first, so that a replay viewer costs
// about a megabyte, not the frames consumer's buffers.
const Client = "replay"

// Probe bounds when looking for a camera's records in a partition.
const (
	probeRecords = 512
	probeTimeout = 3 * time.Second
)

// Replays plays back the frames topic and the recording for viewer nodes
// (web.Replays, web.Recordings): it finds the partitions that hold a
// camera, seeks by capture time (the record timestamp), and hands
// caught-up replays over to the hub.
type Replays struct {
	o     Options
	kafka *kafka.Conns
	hub   *hub.Hub
	rec   *recindex.Index // the recording tiers, played before the frames topic; nil: none
}

// New returns replays of h's cameras that ask k for their client (Client);
// rec, if not nil, is the recording index.
func New(o Options, k *kafka.Conns, h *hub.Hub, rec *recindex.Index) *Replays {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = kafka.DefaultMaxMessageBytes
	}
	if o.MaxFPS <= 0 {
		o.MaxFPS = replay.DefaultMaxFPS
	}
	k.Want(Client, func(o *kafka.Options) { o.Buffered, o.FetchDefault = 2, 256<<10 })
	return &Replays{o: o, kafka: k, hub: h, rec: rec}
}

// partitions returns the partitions that hold camera's frames: those the
// hub saw them on; otherwise the candidates of the clients' partitioners
// that hold a record of the camera at or after at (a node that restarted
// while the producer is down has seen nothing live).
func (r *Replays) partitions(client sarama.Client, camera string, at time.Time) ([]int32, error) {
	if c, ok := r.hub.Camera(camera); ok {
		if seen := c.Partitions(); len(seen) > 0 {
			return seen, nil
		}
	}
	all, err := client.Partitions(r.o.FramesTopic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", r.o.FramesTopic, err)
	}
	var found []int32
	for _, p := range kafka.CandidatePartitions(camera, int32(len(all)), nil) {
		from, err := kafka.OffsetAt(client, r.o.FramesTopic, p, at)
		if err != nil {
			return nil, err
		}
		// Look from a little before at too: at may be past the newest.
		from = max(from-probeRecords/2, 0)
		hit := false
		err = kafka.Scan(client, r.o.FramesTopic, p, from, probeRecords, probeTimeout, func(rec kafka.Record) bool {
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

func (r *Replays) history(ctx context.Context, camera string, at time.Time) (*kafka.History, []int32, sarama.Client, error) {
	client, err := r.kafka.Await(ctx, Client)
	if err != nil {
		return nil, nil, nil, err
	}
	parts, err := r.partitions(client, camera, at)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := kafka.OpenHistory(client, r.o.FramesTopic, camera, parts, at, r.o.MaxMessageBytes)
	return h, parts, client, err
}

// Open starts a replay; its first frame is read before it returns.
func (r *Replays) Open(ctx context.Context, camera string, at time.Time, speed float64) (web.Replay, error) {
	h, parts, client, err := r.frames(ctx, camera, at)
	if err != nil {
		return web.Replay{}, err
	}
	p, err := replay.New(h, replay.Options{Speed: speed, MaxFPS: r.o.MaxFPS, LiveAfter: func(seq uint64, capturedAt time.Time) (replay.Reader, bool) {
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
		if o := r.recOldest(camera); !o.IsZero() && (o.Before(oldest) || oldest.IsZero()) {
			oldest = o
		}
		clamped = err == nil && !oldest.IsZero() && at.Before(oldest)
	}
	return web.Replay{Reader: p, First: first, Clamped: clamped}, nil
}

// first reads a player's first frame; a camera that records nothing at or
// after at gets ErrNothingRecorded once ctx ends (unless it is live: then
// the next frame will come).
func (r *Replays) first(ctx context.Context, p *replay.Player, at time.Time) (*frame.Frame, error) {
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
func (r *Replays) FrameAt(ctx context.Context, camera string, at time.Time) (*frame.Frame, error) {
	h, _, _, err := r.frames(ctx, camera, at)
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
func (r *Replays) oldest(client sarama.Client, camera string, parts []int32) (time.Time, error) {
	var oldest time.Time
	for _, p := range parts {
		var first, mine time.Time
		err := kafka.Scan(client, r.o.FramesTopic, p, 0, probeRecords, probeTimeout, func(rec kafka.Record) bool {
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
func (r *Replays) Range(ctx context.Context, camera string) (oldest, newest time.Time, err error) {
	client, err := r.kafka.Await(ctx, Client)
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
	if o := r.recOldest(camera); !o.IsZero() && (o.Before(oldest) || oldest.IsZero()) {
		oldest = o
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
			hwm, err := client.GetOffset(r.o.FramesTopic, p, sarama.OffsetNewest)
			if err != nil {
				return oldest, newest, err
			}
			err = kafka.Scan(client, r.o.FramesTopic, p, hwm-probeRecords, probeRecords, probeTimeout, func(rec kafka.Record) bool {
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

// recOldest is the oldest frame of camera's recording (zero: none).
func (r *Replays) recOldest(camera string) time.Time {
	if r.rec == nil {
		return time.Time{}
	}
	return r.rec.Oldest(camera)
}

// frames opens camera's whole history from at: the recording tiers while
// at is older than what the frames topic holds of the camera, crossing
// into the frames topic where it begins (record.Timeline); the frames
// topic alone otherwise. parts and client are the frames topic's.
func (r *Replays) frames(ctx context.Context, camera string, at time.Time) (replay.Frames, []int32, sarama.Client, error) {
	if r.recOldest(camera).IsZero() {
		return r.history(ctx, camera, at)
	}
	client, err := r.kafka.Await(ctx, Client)
	if err != nil {
		return nil, nil, nil, err
	}
	parts, perr := r.partitions(client, camera, at)
	var liveOldest time.Time
	if perr == nil {
		if liveOldest, err = r.oldest(client, camera, parts); err != nil {
			return nil, nil, nil, err
		}
		if !at.Before(liveOldest) {
			h, err := kafka.OpenHistory(client, r.o.FramesTopic, camera, parts, at, r.o.MaxMessageBytes)
			return h, parts, client, err
		}
	}
	// The frames topic starts later (or holds nothing of the camera).
	src, err := r.recorded(client, camera, at)
	if err != nil {
		return nil, nil, nil, err
	}
	var cachedAt time.Time
	liveFrom := func() time.Time {
		if perr != nil {
			return time.Now().Add(time.Hour) // nothing in the frames topic: the recording to its end
		}
		if time.Since(cachedAt) > 5*time.Second {
			if o, err := r.oldest(client, camera, parts); err == nil && !o.IsZero() {
				liveOldest = o
			}
			cachedAt = time.Now()
		}
		return liveOldest
	}
	openLive := func(since time.Time) (record.Source, error) {
		h, _, _, err := r.history(context.WithoutCancel(ctx), camera, since)
		return h, err
	}
	tl := record.NewTimeline(src, at, liveFrom, openLive)
	// Crossing near the frames topic's start, retention may remove what
	// the reader was about to read: back to the recording, and across
	// again further on.
	tl.Reopen(func(since time.Time) (record.Source, error) {
		cachedAt = time.Time{}
		return r.recorded(client, camera, since)
	})
	return tl, parts, client, nil
}

// recorded returns camera's recording from at: both tiers merged (the
// reduced tier alone in a binary without OpenCV).
func (r *Replays) recorded(client sarama.Client, camera string, at time.Time) (record.Source, error) {
	var reduced, full record.Source
	if p, ok := r.rec.ReducedPartition(camera); ok {
		from, err := kafka.OffsetAt(client, r.o.ReducedTopic, p, at)
		if err != nil {
			return nil, err
		}
		kr, err := kafka.NewKeyReader(client, r.o.ReducedTopic, p, from, camera)
		if err != nil {
			return nil, err
		}
		reduced = reducedSource{kr: kr, at: at}
	}
	if canDecodeChunks {
		full = &fullSource{client: client, topic: r.o.FullTopic, camera: camera, at: at, chunks: r.rec.ChunksFrom(camera, at)}
	}
	if reduced == nil && full == nil {
		return nil, web.ErrNothingRecorded
	}
	return record.Merge(reduced, full), nil
}

// reducedSource plays the reduced tier: its records are frames.
type reducedSource struct {
	kr *kafka.KeyReader
	at time.Time
}

// Next returns the tier's next frame, skipping records that are not frames
// and frames captured before at: a reduced-tier record's timestamp (its
// slot on the interval's grid, in milliseconds) can be a little later than
// its frame's capture time.
func (s reducedSource) Next(ctx context.Context) (*frame.Frame, error) {
	for {
		rec, err := s.kr.Next(ctx)
		if err != nil {
			return nil, err
		}
		f, err := frame.Decode(rec.Key, rec.Value, rec.Headers, rec.Timestamp, 0)
		if err == nil && !f.CapturedAt.Before(s.at) {
			return f, nil
		}
	}
}

// Close stops reading.
func (s reducedSource) Close() { s.kr.Close() }

// fullSource plays the full tier's chunks, found in the index, decoded
// back into frames one chunk at a time.
type fullSource struct {
	client sarama.Client
	topic  string
	camera string
	at     time.Time
	chunks []record.IndexEntry
	buf    []*frame.Frame
}

// Next returns the next frame of the chunks, decoding one when it needs
// more; chunks retention removed meanwhile are skipped.
func (s *fullSource) Next(ctx context.Context) (*frame.Frame, error) {
	for len(s.buf) == 0 {
		if len(s.chunks) == 0 {
			return nil, io.EOF
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e := s.chunks[0]
		s.chunks = s.chunks[1:]
		rec, err := kafka.FetchOne(s.client, s.topic, e.Partition, e.Offset, 5*time.Second)
		if err != nil {
			continue // removed by retention meanwhile: the reduced tier still has that time
		}
		ci, err := record.ParseChunk(rec.Header)
		if err != nil {
			continue
		}
		frames, err := decodeChunk(s.camera, rec.Value, ci)
		if err != nil {
			continue
		}
		for _, f := range frames {
			if !f.CapturedAt.Before(s.at) {
				s.buf = append(s.buf, f)
			}
		}
	}
	f := s.buf[0]
	s.buf = s.buf[1:]
	return f, nil
}

// Close does nothing: chunks are fetched one at a time.
func (s *fullSource) Close() {}

// progressMaxAge is how long a recorder's last progress record counts:
// a recorder that stopped talking shows its lag growing for this long,
// then none (the camera may be gone).
const progressMaxAge = 10 * time.Minute

// Storage reports what the recording holds (web.Recordings), with each
// camera's recorder lag and lost frames: from the recorder in this
// process, or else from what the recorders last wrote to the index topic.
func (r *Replays) Storage() []web.Storage {
	list := r.rec.Storage()
	var local map[string]RecorderProgress
	if r.o.Recorder != nil {
		local = r.o.Recorder()
	}
	remote, t := r.rec.Progress(progressMaxAge), time.Now()
	for i := range list {
		p, ok := local[list[i].Camera]
		if !ok {
			e, has := remote[list[i].Camera]
			if !has {
				continue
			}
			p = RecorderProgress{RecordedUntil: e.Recorded, Lost: e.Lost}
		}
		lag, lost := max(0, t.Sub(p.RecordedUntil).Seconds()), p.Lost
		list[i].RecorderLag, list[i].RecorderLost = &lag, &lost
	}
	return list
}

// Spans returns the recording's spans of camera (web.Recordings).
func (r *Replays) Spans(camera string, from, to time.Time) []web.Span {
	return r.rec.Spans(camera, from, to)
}

// maxPreviewRecords bounds the reduced-tier records one preview reads: a
// quarter of an hour at the default interval of a second.
const maxPreviewRecords = 900

// ReducedFrames returns up to n frames of camera's reduced tier captured
// between from and to, spread evenly over that time (the first at or
// after each of n equal steps): the JPEGs as stored, one a second, no
// decoding or encoding (web.Recordings). ErrNothingRecorded when the tier
// holds none of that time.
func (r *Replays) ReducedFrames(ctx context.Context, camera string, from, to time.Time, n int) ([]*frame.Frame, error) {
	if r.rec == nil || n <= 0 || !from.Before(to) {
		return nil, web.ErrNothingRecorded
	}
	p, ok := r.rec.ReducedPartition(camera)
	if !ok {
		return nil, web.ErrNothingRecorded
	}
	client, err := r.kafka.Await(ctx, Client)
	if err != nil {
		return nil, err
	}
	// A record's timestamp is its slot on the interval's grid, up to an
	// interval after its frame's capture time: start a little early.
	start, err := kafka.OffsetAt(client, r.o.ReducedTopic, p, from.Add(-2*time.Second))
	if err != nil {
		return nil, err
	}
	kr, err := kafka.NewKeyReader(client, r.o.ReducedTopic, p, start, camera)
	if err != nil {
		return nil, err
	}
	defer kr.Close()
	step := max(to.Sub(from)/time.Duration(n), time.Millisecond)
	next := from // the next step's time
	var out []*frame.Frame
	for read := 0; read < maxPreviewRecords && len(out) < n; read++ {
		rec, err := kr.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		f, err := frame.Decode(rec.Key, rec.Value, rec.Headers, rec.Timestamp, 0)
		if err != nil || f.CapturedAt.Before(next) {
			continue
		}
		if f.CapturedAt.After(to) {
			break
		}
		// Copied, so that the fetch response it came in can go.
		f.Data = bytes.Clone(f.Data)
		out = append(out, f)
		for !next.After(f.CapturedAt) {
			next = next.Add(step)
		}
	}
	if len(out) == 0 {
		return nil, web.ErrNothingRecorded
	}
	return out, nil
}
