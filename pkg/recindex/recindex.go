// Package recindex is a viewer node's index of the recording tiers: it
// follows the small index topic the recorders write (package record's
// IndexEntry) from its start, so it knows for every camera which spans each
// tier holds, where each full-tier chunk is, and how many bytes are held,
// without reading the tiers themselves. It owns the trimming of what
// retention removed (from each tier partition's oldest offset), the spans
// shown under the timeline, the storage figures, and the detection of a
// byte budget (recording.max_bytes) that cuts a camera's recording short of
// its retention.
//
// It is a package of its own, not part of package playback, because the
// storage page and metrics use it without playing anything, and playback
// asks it where chunks are: playback imports recindex, never the reverse.
// It may not read the tiers' frames, the configuration (it takes Options),
// or write anything to Kafka.
package recindex

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/web"
)

// Client names the index's Kafka client.
const Client = "recordings"

// Options configures an Index. The three topics must be set.
type Options struct {
	// IndexTopic, FullTopic and ReducedTopic are the recording's topics.
	IndexTopic, FullTopic, ReducedTopic string
	// MaxBytes is the recording's byte budget; zero or less: none (no
	// budget cut is ever reported).
	MaxBytes int64
	// Retain is how long the recording is meant to keep.
	Retain time.Duration
	// Chunk is the full tier's chunk length; zero: record.DefaultChunk.
	Chunk time.Duration
	// Interval is the reduced tier's interval; zero: record.DefaultInterval.
	Interval time.Duration
	// Logger logs budget cuts and lost follows; nil: slog.Default().
	Logger *slog.Logger
}

// Index is a viewer node's view of the recording tiers: it reads the
// small index topic from its start and follows it, so it knows for every
// camera which spans each tier holds, where each full-tier chunk is, and
// how many bytes are held, without reading the tiers themselves. What
// retention removed is learnt from each partition's oldest offset.
type Index struct {
	o     Options
	log   *slog.Logger
	kafka *kafka.Conns

	following atomic.Bool
	invalid   atomic.Uint64

	mu     sync.Mutex
	cams   map[string]*camIndex
	starts map[string]int64 // "topic/partition" → oldest offset held, every 5 s
	warned map[string]bool  // cameras whose budget cut was logged
}

// camIndex is what one camera's recording holds, per tier, and what its
// recorder last said of its progress.
type camIndex struct {
	full, reduced tierIndex
	progress      record.ProgressEntry
}

func (c *camIndex) tier(name string) *tierIndex {
	if name == record.TierFull {
		return &c.full
	}
	return &c.reduced
}

// tierIndex is one tier's index entries of a camera, oldest first, with
// their sums kept as entries come and go: reports cost nothing per entry.
type tierIndex struct {
	entries []record.IndexEntry
	bytes   int64
	frames  int
}

// trim drops the entries whose first record retention removed.
func (t *tierIndex) trim(gone func(record.IndexEntry) bool) {
	i := 0
	for i < len(t.entries) && gone(t.entries[i]) {
		t.bytes -= t.entries[i].Bytes
		t.frames -= t.entries[i].Frames
		i++
	}
	t.entries = t.entries[i:]
}

// New returns an index that asks k for its client (Client); it reads
// nothing until Run.
func New(o Options, k *kafka.Conns) *Index {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Chunk <= 0 {
		o.Chunk = record.DefaultChunk
	}
	if o.Interval <= 0 {
		o.Interval = record.DefaultInterval
	}
	k.Want(Client, nil)
	return &Index{o: o, log: o.Logger.With("component", "recordings"), kafka: k,
		cams: map[string]*camIndex{}, starts: map[string]int64{}, warned: map[string]bool{}}
}

// Name names the index among a process's components.
func (r *Index) Name() string { return "recordings" }

// Start does nothing: the index is read in Run.
func (r *Index) Start() error { return nil }

// Run follows the index topic from its oldest record. A missing topic (no
// recorder ever ran) is waited for.
func (r *Index) Run(ctx context.Context) error {
	client, err := r.kafka.Await(ctx, Client)
	if err != nil {
		return nil
	}
	// What retention removed is read in the background, so that answers
	// (the range of every tile) never wait for the brokers.
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if r.following.Load() {
					r.refreshStarts(client)
				}
			}
		}
	}()
	for backoff := time.Second; ctx.Err() == nil; backoff = min(backoff*2, 30*time.Second) {
		if parts, err := client.Partitions(r.o.IndexTopic); err == nil && len(parts) > 0 {
			r.following.Store(true)
			r.refreshStarts(client)
			err = kafka.Follow(ctx, client, r.o.IndexTopic, time.Unix(0, 0), r.add, r.log)
			r.following.Store(false)
			if err != nil {
				r.log.Warn("index topic no longer followed, retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			_ = client.RefreshMetadata(r.o.IndexTopic)
		}
	}
	return nil
}

func (r *Index) add(rec kafka.Record) {
	if kind := rec.Header(record.HeaderKind); kind != nil {
		r.addProgress(string(kind), rec.Value)
		return
	}
	e, err := record.ParseIndexEntry(rec.Value)
	if err != nil {
		r.invalid.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cams[e.Camera]
	if c == nil {
		c = &camIndex{}
		r.cams[e.Camera] = c
	}
	t := c.tier(e.Tier)
	// Entries come in order per camera; after a recorder restart one may
	// overlap: keep the list sorted by start.
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].Start.After(e.Start) })
	t.entries = slices.Insert(t.entries, i, e)
	t.bytes += e.Bytes
	t.frames += e.Frames
}

// addProgress takes a recorder's progress record; records of kinds this
// node does not know are skipped.
func (r *Index) addProgress(kind string, value []byte) {
	if kind != record.KindProgress {
		return
	}
	p, err := record.ParseProgressEntry(value)
	if err != nil {
		r.invalid.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cams[p.Camera]
	if c == nil {
		c = &camIndex{}
		r.cams[p.Camera] = c
	}
	if p.At.After(c.progress.At) {
		c.progress = p
	}
}

// Progress returns what the recorders last said of how far they are with
// each camera (record.ProgressEntry), for the cameras they said it of
// within maxAge: older word is from a recorder gone, or from before
// this node's time.
func (r *Index) Progress(maxAge time.Duration) map[string]record.ProgressEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := map[string]record.ProgressEntry{}
	for id, c := range r.cams {
		if !c.progress.At.IsZero() && now.Sub(c.progress.At) <= maxAge {
			out[id] = c.progress
		}
	}
	return out
}

// Ready is always nil: an index not read yet is an empty recording.
func (r *Index) Ready() error { return nil }

// Close does nothing: Run owns the follow.
func (r *Index) Close() error { return nil }

// topicOf returns a tier's topic.
func (r *Index) topicOf(tier string) string {
	if tier == record.TierFull {
		return r.o.FullTopic
	}
	return r.o.ReducedTopic
}

// refreshStarts re-reads the oldest offset of every tier partition and
// drops the index entries retention removed.
func (r *Index) refreshStarts(client sarama.Client) {
	starts := map[string]int64{}
	for _, tier := range []string{record.TierFull, record.TierReduced} {
		topic := r.topicOf(tier)
		parts, err := client.Partitions(topic)
		if err != nil {
			continue
		}
		for _, p := range parts {
			if off, err := client.GetOffset(topic, p, sarama.OffsetOldest); err == nil {
				starts[partKey(topic, p)] = off
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = starts
	for _, c := range r.cams {
		for _, tier := range []string{record.TierFull, record.TierReduced} {
			topic := r.topicOf(tier)
			c.tier(tier).trim(func(e record.IndexEntry) bool { return e.Offset < starts[partKey(topic, e.Partition)] })
		}
	}
}

func partKey(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

// tierOf returns a camera's tier index, nil if none. r.mu is held.
func (r *Index) tierOf(camera, tier string) *tierIndex {
	if c := r.cams[camera]; c != nil && len(c.tier(tier).entries) > 0 {
		return c.tier(tier)
	}
	return nil
}

// Oldest returns the capture time of the oldest frame recorded of camera
// (zero if none).
func (r *Index) Oldest(camera string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	for _, tier := range []string{record.TierFull, record.TierReduced} {
		if ti := r.tierOf(camera, tier); ti != nil && (t.IsZero() || ti.entries[0].Start.Before(t)) {
			t = ti.entries[0].Start
		}
	}
	return t
}

// ReducedPartition returns the reduced tier's partition of camera.
func (r *Index) ReducedPartition(camera string) (int32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.tierOf(camera, record.TierReduced)
	if ti == nil {
		return 0, false
	}
	return ti.entries[len(ti.entries)-1].Partition, true
}

// ChunksFrom returns (a copy of) camera's full-tier chunks that end at or
// after at.
func (r *Index) ChunksFrom(camera string, at time.Time) []record.IndexEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.tierOf(camera, record.TierFull)
	if ti == nil {
		return nil
	}
	i := sort.Search(len(ti.entries), func(i int) bool { return !ti.entries[i].End.Before(at) })
	return slices.Clone(ti.entries[i:])
}

// FullRate returns the frame rate of camera's first full-tier chunk that
// overlaps from..to; 0 if there is none.
func (r *Index) FullRate(camera string, from, to time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.tierOf(camera, record.TierFull)
	if ti == nil {
		return 0
	}
	for _, e := range ti.entries[sort.Search(len(ti.entries), func(i int) bool { return ti.entries[i].End.After(from) }):] {
		if !e.Start.Before(to) {
			break
		}
		if e.Frames > 1 && e.End.After(e.Start) {
			return float64(e.Frames-1) / e.End.Sub(e.Start).Seconds()
		}
	}
	return 0
}

// Storage reports what the recording holds per camera and tier.
func (r *Index) Storage() []web.Storage {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.cams))
	for id := range r.cams {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := time.Now()
	out := make([]web.Storage, 0, len(ids))
	for _, id := range ids {
		st := web.Storage{Camera: id}
		for _, tier := range []string{record.TierFull, record.TierReduced} {
			ti := r.tierOf(id, tier)
			if ti == nil {
				continue
			}
			t := web.TierStorage{Tier: tier, Bytes: ti.bytes, Frames: ti.frames,
				Oldest: ti.entries[0].Start, Newest: ti.entries[len(ti.entries)-1].End}
			if span := now.Sub(t.Oldest).Hours(); span > 0 {
				t.BytesPerHour = float64(t.Bytes) / span
			}
			st.Tiers = append(st.Tiers, t)
			if st.Oldest.IsZero() || t.Oldest.Before(st.Oldest) {
				st.Oldest = t.Oldest
			}
			if t.Newest.After(st.Newest) {
				st.Newest = t.Newest
			}
		}
		st.BudgetCut = r.cut(id, st.Oldest, now)
		out = append(out, st)
	}
	return out
}

// cut reports whether recording.max_bytes removed recordings of camera
// younger than recording.retain (a partition of either tier that holds the
// camera lost records while the oldest kept is younger than that), and logs
// it once. A budget smaller than the camera's rate can leave a tier with no
// record at all; the other still tells. r.mu is held.
func (r *Index) cut(camera string, oldest, now time.Time) bool {
	if r.o.MaxBytes <= 0 {
		return false
	}
	removed := false
	for _, tier := range []string{record.TierReduced, record.TierFull} {
		if ti := r.tierOf(camera, tier); ti != nil && r.starts[partKey(r.topicOf(tier), ti.entries[0].Partition)] > 0 {
			removed = true
		}
	}
	cut := removed && now.Sub(oldest) < r.o.Retain-time.Minute
	if cut && !r.warned[camera] {
		r.log.Warn("recording.max_bytes holds less than recording.retain for this camera: the oldest recordings are removed early",
			"camera", camera, "holds", now.Sub(oldest).Round(time.Second).String(), "retain", r.o.Retain.String())
	}
	r.warned[camera] = cut
	return cut
}

// Collect adds the storage figures to a metrics scrape.
func (r *Index) Collect(s *metrics.Snapshot) {
	now := time.Now()
	for _, st := range r.Storage() {
		for _, t := range st.Tiers {
			s.Storage = append(s.Storage, metrics.Storage{Camera: st.Camera, Tier: t.Tier, Bytes: t.Bytes,
				OldestAge: now.Sub(t.Oldest).Seconds(), BytesPerHour: t.BytesPerHour})
		}
	}
}

// Spans returns the spans of camera's recording between from and to, the
// full tier's chunks merged where they follow each other.
func (r *Index) Spans(camera string, from, to time.Time) []web.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []web.Span
	for _, tier := range []string{record.TierReduced, record.TierFull} {
		ti := r.tierOf(camera, tier)
		if ti == nil {
			continue
		}
		// Entries further apart than this are separate spans.
		g := 2*r.o.Chunk + time.Second
		if tier == record.TierReduced {
			g = record.IndexPeriod + 2*r.o.Interval
		}
		var cur *web.Span
		for _, e := range ti.entries {
			if e.End.Before(from) || e.Start.After(to) {
				continue
			}
			if cur != nil && e.Start.Sub(cur.End) <= g {
				cur.End = e.End
				continue
			}
			if cur != nil {
				out = append(out, *cur)
			}
			cur = &web.Span{Tier: tier, Start: e.Start, End: e.End}
		}
		if cur != nil {
			out = append(out, *cur)
		}
	}
	return out
}
