package app

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

// camIndex is what one camera's recording holds, per tier, oldest first.
type camIndex struct {
	full, reduced []record.IndexEntry
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
	list := &c.reduced
	if e.Tier == record.TierFull {
		list = &c.full
	}
	// Entries come in order per camera; after a recorder restart one may
	// overlap: keep the list sorted by start.
	i := sort.Search(len(*list), func(i int) bool { return (*list)[i].Start.After(e.Start) })
	*list = slices.Insert(*list, i, e)
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
		c.full = r.dropGone(r.cfg.Record.FullTopic, c.full)
		c.reduced = r.dropGone(r.cfg.Record.ReducedTopic, c.reduced)
	}
}

// dropGone removes the entries whose records retention removed; for the
// reduced tier an entry goes once its last frame could be gone.
func (r *recordings) dropGone(topic string, list []record.IndexEntry) []record.IndexEntry {
	i := 0
	for i < len(list) && list[i].Offset < r.starts[partKey(topic, list[i].Partition)] {
		i++
	}
	return list[i:]
}

func partKey(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

// entries returns a copy of one camera's entries of a tier.
func (r *recordings) entries(camera, tier string) []record.IndexEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cams[camera]
	if c == nil {
		return nil
	}
	if tier == record.TierFull {
		return slices.Clone(c.full)
	}
	return slices.Clone(c.reduced)
}

// oldest returns the capture time of the oldest frame recorded of camera
// (zero if none).
func (r *recordings) oldest(camera string) time.Time {
	var t time.Time
	for _, tier := range []string{record.TierFull, record.TierReduced} {
		if e := r.entries(camera, tier); len(e) > 0 && (t.IsZero() || e[0].Start.Before(t)) {
			t = e[0].Start
		}
	}
	return t
}

// reducedPartition returns the reduced tier's partition of camera.
func (r *recordings) reducedPartition(camera string) (int32, bool) {
	e := r.entries(camera, record.TierReduced)
	if len(e) == 0 {
		return 0, false
	}
	return e[len(e)-1].Partition, true
}

// Storage reports what the recording holds per camera and tier.
func (r *recordings) Storage() []web.Storage {
	r.mu.Lock()
	ids := make([]string, 0, len(r.cams))
	for id := range r.cams {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	sort.Strings(ids)
	now := time.Now()
	var out []web.Storage
	for _, id := range ids {
		st := web.Storage{Camera: id, Retain: r.cfg.Record.Retain}
		for _, tier := range []string{record.TierFull, record.TierReduced} {
			list := r.entries(id, tier)
			if len(list) == 0 {
				continue
			}
			t := web.TierStorage{Tier: tier, Oldest: list[0].Start, Newest: list[len(list)-1].End}
			for _, e := range list {
				t.Bytes += e.Bytes
				t.Frames += e.Frames
			}
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
		// Retention by bytes removed records younger than retain: the
		// budget is too small for this camera's partition.
		st.BudgetCut = r.cut(id, st.Oldest, now)
		out = append(out, st)
	}
	return out
}

// cut reports whether the reduced tier of camera lost records to the
// byte budget (the partition's start moved while the oldest kept is
// younger than recording.retain), and logs it once.
func (r *recordings) cut(camera string, oldest, now time.Time) bool {
	list := r.entries(camera, record.TierReduced)
	if len(list) == 0 || oldest.IsZero() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	removed := r.starts[partKey(r.cfg.Record.ReducedTopic, list[0].Partition)] > 0
	cut := removed && r.cfg.Record.MaxBytes > 0 && now.Sub(oldest) < r.cfg.Record.Retain-time.Minute
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
	var out []web.Span
	gap := 2*r.cfg.Record.Chunk + time.Second
	for _, tier := range []string{record.TierReduced, record.TierFull} {
		var cur *web.Span
		g := gap
		if tier == record.TierReduced {
			g = indexPeriod + 2*r.cfg.Record.Interval
		}
		for _, e := range r.entries(camera, tier) {
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
