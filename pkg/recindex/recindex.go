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

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/web"
)

// recordingsClient names the recordings feed's Kafka client.
const recordingsClient = "recordings"

// recordings is a viewer node's view of the recording tiers: it reads the
// small index topic from its start and follows it, so it knows for every
// camera which spans each tier holds, where each full-tier chunk is, and
// how many bytes are held, without reading the tiers themselves. What
// retention removed is learnt from each partition's oldest offset.
type recordings struct {
	cfg   *config.Config
	log   *slog.Logger
	kafka *kafkaConns

	following atomic.Bool
	invalid   atomic.Uint64

	mu     sync.Mutex
	cams   map[string]*camIndex
	starts map[string]int64 // "topic/partition" → oldest offset held, every 5 s
	warned map[string]bool  // cameras whose budget cut was logged
}

// camIndex is what one camera's recording holds, per tier.
type camIndex struct{ full, reduced tierIndex }

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

func newRecordings(cfg *config.Config, log *slog.Logger, k *kafkaConns) *recordings {
	k.want(recordingsClient, nil)
	return &recordings{cfg: cfg, log: log.With("component", "recordings"), kafka: k,
		cams: map[string]*camIndex{}, starts: map[string]int64{}, warned: map[string]bool{}}
}

func (r *recordings) Name() string { return "recordings" }
func (r *recordings) Start() error { return nil }

// Run follows the index topic from its oldest record. A missing topic (no
// recorder ever ran) is waited for.
func (r *recordings) Run(ctx context.Context) error {
	client, err := r.kafka.await(ctx, recordingsClient)
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
		if parts, err := client.Partitions(r.cfg.Record.IndexTopic); err == nil && len(parts) > 0 {
			r.following.Store(true)
			r.refreshStarts(client)
			err = kafka.Follow(ctx, client, r.cfg.Record.IndexTopic, time.Unix(0, 0), r.add, r.log)
			r.following.Store(false)
			if err != nil {
				r.log.Warn("index topic no longer followed, retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			_ = client.RefreshMetadata(r.cfg.Record.IndexTopic)
		}
	}
	return nil
}

func (r *recordings) add(rec kafka.Record) {
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

func (r *recordings) Ready() error { return nil }
func (r *recordings) Close() error { return nil }

// topicOf returns a tier's topic.
func (r *recordings) topicOf(tier string) string {
	if tier == record.TierFull {
		return r.cfg.Record.FullTopic
	}
	return r.cfg.Record.ReducedTopic
}

// refreshStarts re-reads the oldest offset of every tier partition and
// drops the index entries retention removed.
func (r *recordings) refreshStarts(client sarama.Client) {
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
func (r *recordings) tierOf(camera, tier string) *tierIndex {
	if c := r.cams[camera]; c != nil && len(c.tier(tier).entries) > 0 {
		return c.tier(tier)
	}
	return nil
}

// oldest returns the capture time of the oldest frame recorded of camera
// (zero if none).
func (r *recordings) oldest(camera string) time.Time {
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

// reducedPartition returns the reduced tier's partition of camera.
func (r *recordings) reducedPartition(camera string) (int32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.tierOf(camera, record.TierReduced)
	if ti == nil {
		return 0, false
	}
	return ti.entries[len(ti.entries)-1].Partition, true
}

// chunksFrom returns (a copy of) camera's full-tier chunks that end at or
// after at.
func (r *recordings) chunksFrom(camera string, at time.Time) []record.IndexEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.tierOf(camera, record.TierFull)
	if ti == nil {
		return nil
	}
	i := sort.Search(len(ti.entries), func(i int) bool { return !ti.entries[i].End.Before(at) })
	return slices.Clone(ti.entries[i:])
}

// fullRate returns the frame rate of camera's first full-tier chunk that
// overlaps from..to; 0 if there is none.
func (r *recordings) fullRate(camera string, from, to time.Time) float64 {
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
func (r *recordings) Storage() []web.Storage {
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
// younger than recording.retain (its reduced tier's partition lost
// records while the oldest kept is younger than that), and logs it once.
// r.mu is held.
func (r *recordings) cut(camera string, oldest, now time.Time) bool {
	ti := r.tierOf(camera, record.TierReduced)
	if ti == nil || r.cfg.Record.MaxBytes <= 0 {
		return false
	}
	removed := r.starts[partKey(r.cfg.Record.ReducedTopic, ti.entries[0].Partition)] > 0
	cut := removed && now.Sub(oldest) < r.cfg.Record.Retain-time.Minute
	if cut && !r.warned[camera] {
		r.log.Warn("recording.max_bytes holds less than recording.retain for this camera: the oldest recordings are removed early",
			"camera", camera, "holds", now.Sub(oldest).Round(time.Second).String(), "retain", r.cfg.Record.Retain.String())
	}
	r.warned[camera] = cut
	return cut
}

// Collect exports the storage figures.
func (r *recordings) Collect(s *metrics.Snapshot) {
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
func (r *recordings) Spans(camera string, from, to time.Time) []web.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []web.Span
	for _, tier := range []string{record.TierReduced, record.TierFull} {
		ti := r.tierOf(camera, tier)
		if ti == nil {
			continue
		}
		// Entries further apart than this are separate spans.
		g := 2*r.cfg.Record.Chunk + time.Second
		if tier == record.TierReduced {
			g = indexPeriod + 2*r.cfg.Record.Interval
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
