// Package recorder is the recording engine: it reads the frames topic in a
// consumer group of its own and writes the recording tiers that package
// record decides (reduced-tier frames, full-tier chunks encoded by a pool
// of workers, index entries), and commits its progress with the group's
// offsets so that a restart neither records a frame twice nor leaves a gap.
// A recorder writes both tiers, or one (Options.Tiers): a process runs one
// recorder per tier, each with a group of its own, so that the reduced
// tier, one cheap frame a second, never waits for the full tier's
// encoders. It owns the encode workers and their FIFO, the commit protocol (the
// oldest offset still needed per partition, with each camera's progress
// as the commit's metadata) and the retry policy of its writes.
//
// It may not read the configuration (it takes Options), serve HTTP, or
// decide what is kept (package record does); the topics it writes are
// created by whoever owns the Kafka connections (kafka.Conns.Ensure).
package recorder

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/metrics"
	"github.com/streamd/streamd/pkg/record"
)

// The recorder's Kafka clients: its consumer group, its writes, and the
// events it follows, each on a connection of its own. A reduced-tier
// recorder's are named with ReducedSuffix after them (it follows no
// events).
const (
	InClient      = "recorder"
	OutClient     = "recorder-out"
	EventsClient  = "recorder-events"
	ReducedSuffix = "-reduced"
)

// Tiers are the tiers one recorder writes.
type Tiers int

// Values of Options.Tiers.
const (
	// BothTiers: both, from one consumer. When encoding cannot keep up
	// the consumer waits, and the reduced tier waits with it.
	BothTiers Tiers = iota
	// ReducedTier: one frame a second, never waiting for an encoder: it
	// keeps up whatever the full tier does.
	ReducedTier
	// FullTier: every frame of the event windows, encoded by the
	// workers; it falls behind (and reads from the frames topic) when
	// encoding cannot keep up.
	FullTier
)

// FullOn is which events the full tier records.
type FullOn string

// Values of Options.FullOn.
const (
	FullOnMotion  FullOn = "motion"  // every event: motion, faces, objects
	FullOnObjects FullOn = "objects" // object and face events (the default)
	FullOnAlerts  FullOn = "alerts"  // object events of severity alert
)

// Records reports whether an event (any of its changes) opens a full-rate
// window under f; "" is FullOnObjects.
func (f FullOn) Records(e events.Event) bool {
	switch f {
	case FullOnMotion:
		return true
	case FullOnAlerts:
		return e.Type == events.TypeObject && e.Severity == events.SeverityAlert
	}
	return e.Type == events.TypeObject || e.Type == events.TypeFace
}

// The recorder consumers' buffer per partition, and their first fetch
// size (larger frames still come through).
const (
	consumerBuffered = 16
	consumerFetch    = 1 << 20
)

// maxQueuedChunks bounds each encode worker's queue: past it the consumer
// waits and the frames stay in the frames topic, so memory does not grow
// with a backlog (a chunk holds recording.chunk of frames: 2 s of 720p30
// JPEG is ~2 MB). It was 64, which held minutes of video in memory and
// made a stop encode all of it.
const maxQueuedChunks = 2

// StopBudget is the recorder's stop budget: the chunk each worker has in
// hand is finished and written (about one chunk's encode time), queued
// chunks are dropped, and what was written is committed.
const StopBudget = 5 * time.Second

// Options configures a Recorder. Every topic and the group must be set.
type Options struct {
	// FramesTopic is the topic of the cameras' frames, read in Group.
	FramesTopic string
	// Group is the consumer group shared by every recorder, so that the
	// cameras are split between them.
	Group string
	// FullTopic, ReducedTopic and IndexTopic are the recording's topics.
	FullTopic, ReducedTopic, IndexTopic string
	// EventsTopic is the analyzer's events, which open full-rate windows.
	EventsTopic string
	// FullOn says which events open full-rate windows: FullOnMotion
	// (every event), FullOnObjects (default: object and face events, so
	// that wind in a tree is kept at the reduced rate only) or
	// FullOnAlerts (object events of severity alert).
	FullOn FullOn
	// EventsLookback is how far back the events topic is read at start,
	// so that frames read again after a downtime find their windows;
	// zero: the last minute only.
	EventsLookback time.Duration
	// Record is what each camera keeps (package record); its zero fields
	// take record's defaults.
	Record record.Options
	// Codec is the full tier's codec (package video); "" is H.264.
	Codec string
	// Preset and CRF tune the H.264 encoder (package video's Options);
	// zero values take its defaults.
	Preset string
	CRF    int
	// Workers is the number of encode workers; zero: one per core.
	Workers int
	// Tiers are the tiers this recorder writes; the zero value is both.
	// A process runs a ReducedTier and a FullTier recorder, each in a
	// group of its own, so that the reduced tier never waits for the
	// full tier's encoders.
	Tiers Tiers
	// Logger logs the recorder's troubles; nil: slog.Default().
	Logger *slog.Logger
}

// Recorder keeps the recording tiers (package record): a consumer group of
// its own on the frames topic, shared by every recorder so that cameras
// are split between them, and the events topic followed by every recorder
// for the event windows. It starts where the group committed, and commits
// only frames it has written or decided not to, with how far each camera
// was recorded as the commit's metadata: a restart neither records a frame
// twice nor leaves a gap beyond its downtime.
//
// Full-tier chunks are encoded (H.264 by default) by workers, one per
// core, each camera always on the same worker so that its chunks stay in
// order. When encoding cannot keep up, the consumer waits (the frames
// topic keeps the frames meanwhile).
type Recorder struct {
	o      Options
	log    *slog.Logger
	kafka  *kafka.Conns
	encode Encoder

	mu      sync.Mutex
	cams    map[string]*recCam
	parts   map[int32]*recPart
	durable *kafka.Durable
	writer  *kafka.Writer
	// Its Kafka clients' names; events is "" when it follows no events.
	in, out, events string
	workers         []*encodeQueue
	wg              sync.WaitGroup

	written [2]atomic.Int64 // bytes: full, reduced
	chunks  atomic.Uint64
	frames  [2]atomic.Uint64 // full, reduced
	errs    atomic.Uint64
	invalid atomic.Uint64
	// stopping makes a failed write give up instead of retrying: Close
	// is under the shutdown deadline.
	stopping  atomic.Bool
	drainOnce sync.Once
	intake    sync.RWMutex // Record holds it read; drain waits for them
}

// recCam is one camera's recording state.
type recCam struct {
	id        string
	partition int32
	rc        *record.Camera
	arrived   time.Time
	taken     time.Time // capture time of the newest frame taken
	inflight  []int64   // first frame offsets of chunks queued, oldest first
	// what was written, for the commit's metadata
	doneFull, doneReduced time.Time
	agg                   *record.IndexEntry // reduced tier, the index entry being summed
	worker                *encodeQueue
	// Frames lost to retention (Skipped): the seq of the newest frame
	// taken (seq, if any), whether a skip happened since, and the
	// frames counted lost.
	seq     uint64
	hasSeq  bool
	skipped bool
	lost    uint64
}

// recPart is one partition of the frames topic this recorder reads.
type recPart struct {
	next     int64 // offset after the last record seen
	progress record.Progress
}

// New returns a recorder that asks k for its clients (InClient,
// OutClient, EventsClient); it reads nothing until Run. An error means this
// binary cannot encode the full tier.
func New(o Options, k *kafka.Conns) (*Recorder, error) {
	enc, err := newChunkEncoder(o.Codec, o.Preset, o.CRF)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	r := &Recorder{o: o, kafka: k, encode: enc, cams: map[string]*recCam{}, parts: map[int32]*recPart{},
		in: InClient, out: OutClient, events: EventsClient}
	if o.Tiers == ReducedTier {
		r.in, r.out, r.events = InClient+ReducedSuffix, OutClient+ReducedSuffix, ""
		o.Workers = 1 // never used: no windows, no chunks
	}
	r.log = o.Logger.With("component", r.Name())
	// Half a second of 30 fps per partition is enough to keep the
	// recorder busy; frames waiting for an encoder stay in the topic,
	// not in the consumer's buffers (64 frames of each partition, and a
	// fetch of 4 MiB, for each tier's consumer, by default).
	k.Want(r.in, func(ko *kafka.Options) { ko.Buffered, ko.FetchDefault = consumerBuffered, consumerFetch })
	k.Want(r.out, nil)
	if r.events != "" {
		k.Want(r.events, nil)
	}
	for range o.Workers {
		r.workers = append(r.workers, newEncodeQueue())
	}
	return r, nil
}

// Name names the recorder among a process's components: "recorder", or
// "recorder-reduced" for a reduced-tier recorder.
func (r *Recorder) Name() string {
	if r.o.Tiers == ReducedTier {
		return "recorder" + ReducedSuffix
	}
	return "recorder"
}

// Tiers returns the tiers the recorder writes.
func (r *Recorder) Tiers() Tiers { return r.o.Tiers }

// StopBudget is how long Run may take to return once cancelled.
func (r *Recorder) StopBudget() time.Duration { return StopBudget }

// Encoder encodes one full-tier chunk into a record value.
type Encoder func(record.Chunk) ([]byte, error)

// WrapEncoder replaces the chunk encoder with wrap(the current one); call
// it before Run. It is there to instrument encoding (to time it, or to
// slow it down in a test of a recorder that cannot keep up).
func (r *Recorder) WrapEncoder(wrap func(Encoder) Encoder) { r.encode = wrap(r.encode) }

// Start does nothing: the recorder starts in Run, once Kafka is there.
func (r *Recorder) Start() error { return nil }

// Run waits for Kafka, reads the events held, follows the events topic
// and records the frames topic until ctx ends; then it drains (see Close).

func (r *Recorder) Run(ctx context.Context) error {
	in, err := r.kafka.Await(ctx, r.in)
	if err != nil {
		return nil
	}
	outClient, _ := r.kafka.Await(ctx, r.out)
	if outClient == nil {
		return nil
	}
	var evClient sarama.Client
	if r.events != "" {
		if evClient, _ = r.kafka.Await(ctx, r.events); evClient == nil {
			return nil
		}
	}
	if r.writer, err = kafka.NewWriter(outClient); err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	for _, w := range r.workers {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); w.run(r.writeChunk) }()
	}
	// The events follower and the ticker end with ctx, or when Run
	// returns early; Run waits for both before it returns.
	var side sync.WaitGroup
	defer side.Wait()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel() // before side.Wait
	if evClient != nil {
		// Events first: read what is held up to now before any frame,
		// so that frames read again after a downtime find their
		// windows.
		since := time.Now().Add(-r.o.EventsLookback - time.Minute)
		if err := r.readEvents(evClient, since); err != nil {
			r.log.Warn("cannot read events back; windows of past events may be missed", "err", err)
		}
		side.Add(1)
		go func() {
			defer side.Done()
			err := kafka.Follow(sctx, evClient, r.o.EventsTopic, time.Now().Add(-time.Minute), r.event, r.log)
			if err != nil {
				r.log.Warn("events no longer followed", "err", err)
			}
		}()
	}
	d, err := kafka.NewDurable(in, r.o.Group, r.o.FramesTopic, r, r.log.With("role", "recorder"))
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.durable = d
	r.mu.Unlock()
	side.Add(1)
	go func() { defer side.Done(); r.tick(sctx) }()
	// The group session outlives ctx until what is held is written and
	// committed (drain): sarama commits only within a session.
	dctx, dcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer dcancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	r.drain()
	dcancel()
	<-done
	return nil
}

// readEvents reads the events topic from since up to its newest record.
func (r *Recorder) readEvents(client sarama.Client, since time.Time) error {
	topic := r.o.EventsTopic
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("events partitions: %w", err)
	}
	for _, p := range parts {
		from, err := kafka.OffsetAt(client, topic, p, since)
		if err != nil {
			return err
		}
		if err := kafka.Scan(client, topic, p, from, 1_000_000, 30*time.Second, func(rec kafka.Record) bool { r.event(rec); return true }); err != nil {
			return err
		}
	}
	return nil
}

// event opens or closes a camera's full-rate window.
func (r *Recorder) event(rec kafka.Record) {
	e, err := events.Unmarshal(rec.Value)
	if err != nil {
		return // the events feed counts bad events; a recorder just skips them
	}
	if !r.o.FullOn.Records(e) {
		return // kept at the reduced rate only
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.camera(e.Camera, -1)
	r.queue(c, c.rc.Event(e.ID, e.Start, e.End))
}

// camera returns a camera's state, creating it (resumed from its
// partition's committed progress) on first sight. r.mu is held.
func (r *Recorder) camera(id string, partition int32) *recCam {
	c, ok := r.cams[id]
	if !ok {
		c = &recCam{id: id, partition: -1, rc: record.NewCamera(r.o.Record), worker: r.workers[workerOf(id, len(r.workers))]}
		r.cams[id] = c
	}
	if partition >= 0 && c.partition != partition {
		c.partition = partition
		if p, ok := r.parts[partition]; ok {
			if pr, ok := p.progress[id]; ok {
				c.doneFull, c.doneReduced = time.Unix(0, pr[0]), time.Unix(0, pr[1])
				c.rc.Resume(c.doneFull, c.doneReduced)
			}
		}
	}
	return c
}

// workerOf is the encode worker of camera id, always the same one.
func workerOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// Assigned (kafka.DurableSink) starts a group session: state from an earlier one is dropped
// (another recorder may have gone on), and the cameras will resume from
// the progress committed with each partition.
func (r *Recorder) Assigned(metadata map[int32]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cams {
		if _, mine := metadata[c.partition]; !mine && c.partition >= 0 {
			// Another recorder reads it now; the windows stay, in
			// case it comes back.
			c.rc.Reset()
			c.partition, c.agg = -1, nil
			c.doneFull, c.doneReduced = time.Time{}, time.Time{}
		}
	}
	r.parts = map[int32]*recPart{}
	for p, m := range metadata {
		r.parts[p] = &recPart{next: -1, progress: record.DecodeProgress(m)}
	}
}

// Skipped (kafka.DurableSink) learns that retention removed records of
// partition before they were read. The frames lost are counted per
// camera on the camera's next frame, from its sequence numbers, for the
// cameras this recorder has read before; the Durable consumer logs the
// records skipped.
func (r *Recorder) Skipped(partition int32, from, to int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cams {
		if c.partition == partition {
			c.skipped = true
		}
	}
	if p, ok := r.parts[partition]; ok && p.next < to {
		p.next = to
	}
}

// Record (kafka.DurableSink) takes one record of the frames topic.
func (r *Recorder) Record(rec kafka.Record) {
	r.intake.RLock()
	defer r.intake.RUnlock()
	if r.stopping.Load() {
		return // draining: not marked, so read again after a restart
	}
	f, err := frame.Decode(rec.Key, rec.Value, rec.Headers, rec.Timestamp, uint64(rec.Offset))
	r.mu.Lock()
	if p, ok := r.parts[rec.Partition]; ok {
		p.next = rec.Offset + 1
	}
	if err != nil || f.Rendition != "" {
		if err != nil {
			r.invalid.Add(1)
		}
		r.mu.Unlock()
		return
	}
	f.Partition, f.Offset = rec.Partition, rec.Offset
	c := r.camera(f.Camera, rec.Partition)
	c.arrived = time.Now()
	if f.CapturedAt.After(c.taken) {
		c.taken = f.CapturedAt
	}
	if c.skipped && c.hasSeq && f.Seq > c.seq+1 {
		n := f.Seq - c.seq - 1
		c.lost += n
		r.log.Warn("frames never recorded: the frames topic's retention removed them before the recorder read them",
			"camera", c.id, "frames", n, "lost_total", c.lost)
	}
	c.seq, c.hasSeq, c.skipped = f.Seq, true, false
	var reduced *frame.Frame
	var chunks []record.Chunk
	if r.o.Tiers == ReducedTier {
		reduced = c.rc.AddReduced(f) // no windows: nothing held for them
	} else {
		reduced, chunks = c.rc.Add(f)
	}
	r.queue(c, chunks)
	w := c.worker
	r.mu.Unlock()
	if reduced != nil && r.o.Tiers != FullTier {
		r.writeReduced(c, reduced)
	}
	if r.o.Tiers != ReducedTier {
		w.wait(maxQueuedChunks) // back-pressure: encoding is the slow part
	}
}

// queue hands chunks to the camera's worker. r.mu is held.
func (r *Recorder) queue(c *recCam, chunks []record.Chunk) {
	for _, ch := range chunks {
		c.inflight = append(c.inflight, ch[0].Offset)
		c.worker.push(chunkJob{cam: c, chunk: ch})
	}
}

// send writes one record, retrying until it is written or the recorder
// stops: a recording must not have holes (the frames topic keeps the
// frames meanwhile, and the offsets are not committed past them).
func (r *Recorder) send(topic, key string, value []byte, ts time.Time, headers []frame.Header) (int32, int64, bool) {
	for backoff := 250 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		p, off, err := r.writer.Write(topic, key, value, ts, headers)
		if err == nil {
			return p, off, true
		}
		r.errs.Add(1)
		r.log.Warn("cannot write recording, retrying", "err", err, "retry_in", backoff)
		if r.stopping.Load() {
			return 0, 0, false
		}
		time.Sleep(backoff)
	}
}

// writeReduced writes a reduced-tier frame and sums it into the index.
func (r *Recorder) writeReduced(c *recCam, f *frame.Frame) {
	p, off, ok := r.send(r.o.ReducedTopic, f.Camera, f.Data, f.CapturedAt, record.ReducedHeaders(f))
	if !ok {
		return
	}
	r.written[1].Add(int64(len(f.Data)))
	r.frames[1].Add(1)
	r.mu.Lock()
	c.doneReduced = f.CapturedAt
	var flush *record.IndexEntry
	if c.agg != nil && f.CapturedAt.Sub(c.agg.Start) >= record.IndexPeriod {
		flush, c.agg = c.agg, nil
	}
	if c.agg == nil {
		c.agg = &record.IndexEntry{Camera: f.Camera, Tier: record.TierReduced, Start: f.CapturedAt, Partition: p, Offset: off}
	}
	c.agg.End = f.CapturedAt
	c.agg.Frames++
	c.agg.Bytes += int64(len(f.Data))
	r.mu.Unlock()
	if flush != nil {
		r.writeIndex(*flush)
	}
}

func (r *Recorder) writeIndex(e record.IndexEntry) {
	r.send(r.o.IndexTopic, e.Camera, e.Marshal(), e.Start, nil)
}

// writeChunk encodes and writes a full-tier chunk (on a worker).
func (r *Recorder) writeChunk(j chunkJob) {
	defer func() {
		r.mu.Lock()
		j.cam.inflight = j.cam.inflight[1:]
		r.mu.Unlock()
	}()
	data, err := r.encode(j.chunk)
	if err != nil {
		r.errs.Add(1)
		r.log.Warn("cannot encode a chunk; its frames stay in the reduced tier only", "camera", j.cam.id, "frames", len(j.chunk), "err", err)
		return
	}
	p, off, ok := r.send(r.o.FullTopic, j.cam.id, data, j.chunk.Start(), record.ChunkHeaders(j.chunk, r.o.Codec))
	if !ok {
		return
	}
	r.written[0].Add(int64(len(data)))
	r.frames[0].Add(uint64(len(j.chunk)))
	r.chunks.Add(1)
	r.mu.Lock()
	j.cam.doneFull = j.chunk.End()
	r.mu.Unlock()
	r.writeIndex(record.IndexEntry{Camera: j.cam.id, Tier: record.TierFull, Start: j.chunk.Start(), End: j.chunk.End(),
		Frames: len(j.chunk), Bytes: int64(len(data)), Partition: p, Offset: off})
}

// tick, every second, completes the chunks of cameras whose frames
// stopped and commits what is done; every record.ProgressPeriod it tells
// web nodes how far it is (a reduced-tier recorder does not: it never
// waits, and the full tier's lag is the one that matters).
func (r *Recorder) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var told time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.flushIdle(now.Add(-2 * r.chunk()))
			r.commit()
			if r.o.Tiers != ReducedTier && now.Sub(told) >= record.ProgressPeriod {
				told = now
				r.tellProgress(now)
			}
		}
	}
}

// tellProgress writes each camera's progress to the index topic, once:
// a web node reads the next one anyway.
func (r *Recorder) tellProgress(now time.Time) {
	for _, p := range r.Progress() {
		e := record.ProgressEntry{Camera: p.Camera, Recorded: p.Recorded, Lost: p.Lost, At: now}
		if _, _, err := r.writer.Write(r.o.IndexTopic, p.Camera, e.Marshal(), now,
			[]frame.Header{{Key: record.HeaderKind, Value: []byte(record.KindProgress)}}); err != nil {
			r.errs.Add(1)
			return
		}
	}
}

// flushIdle completes the chunks of cameras with no frame since before.
func (r *Recorder) flushIdle(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cams {
		if c.arrived.Before(before) {
			r.queue(c, c.rc.Flush())
		}
	}
}

// marks decides a commit: per partition, the offset to commit (the
// oldest still needed) and the cameras' progress to commit with it.
func (r *Recorder) marks() (map[int32]int64, map[int32]record.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	marks := map[int32]int64{}
	progress := map[int32]record.Progress{}
	for p, st := range r.parts {
		if st.next >= 0 {
			marks[p] = st.next
		}
		progress[p] = record.Progress{}
		// Keep what was committed for cameras not seen in this session.
		for id, v := range st.progress {
			progress[p][id] = v
		}
	}
	low := func(p int32, off int64) {
		if m, ok := marks[p]; ok && off < m {
			marks[p] = off
		}
	}
	for _, c := range r.cams {
		if c.partition < 0 {
			continue
		}
		c.rc.Pending(low)
		if len(c.inflight) > 0 {
			low(c.partition, c.inflight[0])
		}
		if pr, ok := progress[c.partition]; ok {
			pr[c.id] = [2]int64{unixOrZero(c.doneFull), unixOrZero(c.doneReduced)}
		}
	}
	return marks, progress
}

// commit marks, per partition, the oldest offset still needed (a frame
// undecided, or in a chunk not yet written), with the cameras' progress.
func (r *Recorder) commit() {
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	marks, progress := r.marks()
	if d == nil {
		return
	}
	for p, off := range marks {
		meta := record.EncodeProgress(progress[p])
		if len(meta) > 4000 {
			// Kafka's offset.metadata.max.bytes is 4096 by default:
			// too many cameras on one partition to say; a restart
			// may then record the last seconds twice.
			meta = ""
		}
		d.Commit(p, off, meta)
	}
}

// chunk is the full tier's chunk length.
func (r *Recorder) chunk() time.Duration {
	if r.o.Record.Chunk > 0 {
		return r.o.Record.Chunk
	}
	return record.DefaultChunk
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Ready says whether the recorder is a member of its group and recording.
func (r *Recorder) Ready() error {
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	if d == nil {
		return errors.New("recorder not started")
	}
	return d.Ready()
}

// drain stops taking frames, completes every camera's chunk, drops what
// the workers have queued, waits for the chunks in hand, and commits what
// was written. Frames that arrive later
// are not committed: they are read again after a restart.
func (r *Recorder) drain() {
	r.drainOnce.Do(r.drainNow)
}

func (r *Recorder) drainNow() {
	r.stopping.Store(true)
	r.intake.Lock() // wait for the records being handled
	defer r.intake.Unlock()
	r.mu.Lock()
	for _, c := range r.cams {
		r.queue(c, c.rc.Flush())
	}
	r.mu.Unlock()
	for _, w := range r.workers {
		w.abandon()
	}
	r.wg.Wait()
	var flush []record.IndexEntry
	r.mu.Lock()
	for _, c := range r.cams {
		if c.agg != nil {
			flush = append(flush, *c.agg)
			c.agg = nil
		}
	}
	d := r.durable
	r.mu.Unlock()
	if r.writer != nil {
		for _, e := range flush {
			r.writeIndex(e)
		}
	}
	r.commit()
	if d != nil {
		d.Flush()
	}
}

// Close drains (if Run did not): it stops taking frames, completes every
// camera's chunk, waits for the workers to write what is queued, and
// commits; then it leaves the group.
func (r *Recorder) Close() error {
	r.drain()
	r.mu.Lock()
	d := r.durable
	r.mu.Unlock()
	var err error
	if d != nil {
		err = d.Close()
	}
	if r.writer != nil {
		if cerr := r.writer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("recorder: %w", cerr)
		}
	}
	return err
}

// Collect adds the recorder's counters to a metrics scrape. The recorders
// of one process (one per tier) add up: bytes, frames and errors are
// summed, a camera's lag is the worst of them, and its lost frames the
// most either counted (both read the same frames).
func (r *Recorder) Collect(s *metrics.Snapshot) {
	if s.Recorder == nil {
		s.Recorder = &metrics.Recorder{}
	}
	m := s.Recorder
	m.FullBytes += r.written[0].Load()
	m.ReducedBytes += r.written[1].Load()
	m.FullFrames += r.frames[0].Load()
	m.ReducedFrames += r.frames[1].Load()
	m.Chunks += r.chunks.Load()
	m.Errors += r.errs.Load()
	if r.o.Tiers != FullTier { // both read every record: count once
		m.Invalid += r.invalid.Load()
	}
	now := time.Now()
	for _, p := range r.Progress() {
		lag := now.Sub(p.Recorded).Seconds()
		i := slices.IndexFunc(m.Cameras, func(c metrics.RecorderCamera) bool { return c.ID == p.Camera })
		if i < 0 {
			m.Cameras = append(m.Cameras, metrics.RecorderCamera{ID: p.Camera, Lag: lag, Lost: p.Lost})
			continue
		}
		m.Cameras[i].Lag = max(m.Cameras[i].Lag, lag)
		m.Cameras[i].Lost = max(m.Cameras[i].Lost, p.Lost)
	}
}

// CameraProgress is how far the recorder has come with one camera, in
// capture time.
type CameraProgress struct {
	Camera string
	// Taken is the capture time of the newest frame read.
	Taken time.Time
	// Recorded is the capture time up to which the camera is written:
	// Taken, or the end of the last full-tier chunk written while others
	// wait for an encoder. The recorder's lag is now minus Recorded.
	Recorded time.Time
	// Lost counts the camera's frames never recorded: retention removed
	// them from the frames topic before the recorder read them.
	Lost uint64
}

// Progress lists the cameras of the partitions this recorder holds that
// it has read a frame of, in no particular order.
func (r *Recorder) Progress() []CameraProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CameraProgress, 0, len(r.cams))
	for _, c := range r.cams {
		if c.partition < 0 || c.taken.IsZero() {
			continue
		}
		out = append(out, CameraProgress{Camera: c.id, Taken: c.taken, Recorded: c.recorded(), Lost: c.lost})
	}
	return out
}

// recorded is the capture time up to which the camera is recorded: the
// newest frame taken, or, while full-tier chunks wait for an encoder, the
// end of the last chunk written. The recorder's lag is now minus this.
func (c *recCam) recorded() time.Time {
	if len(c.inflight) > 0 && !c.doneFull.IsZero() && c.doneFull.Before(c.taken) {
		return c.doneFull
	}
	return c.taken
}

// ErrNoOpenCV is New's error in a binary built without OpenCV (-tags
// nocv): the full tier cannot be encoded.
var ErrNoOpenCV = errors.New("recording needs OpenCV, and this binary was built without OpenCV (-tags nocv)")

// chunkFPS is the frame rate of a chunk from its capture times (frames
// are written one each; the real times travel in its headers).
func chunkFPS(c record.Chunk) float64 {
	if len(c) < 2 {
		return 1
	}
	span := c.End().Sub(c.Start()).Seconds()
	if span <= 0 {
		return 30
	}
	return min(max(float64(len(c)-1)/span, 1), 120)
}
