package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// DurableSink is what a Durable consumer feeds.
type DurableSink interface {
	// Assigned starts a group session: the partitions this member now
	// reads, with the metadata committed with each one's offset. State
	// kept from an earlier session must be dropped: another member may
	// have gone on from where it was.
	Assigned(metadata map[int32]string)
	// Record is called for each record, in order per partition, from one
	// goroutine per partition.
	Record(rec Record)
	// Skipped says that the records of partition from offset from up to
	// to (exclusive) were removed by retention before this member read
	// them; reading goes on at to. It is called after Assigned and
	// before the partition's next record.
	Skipped(partition int32, from, to int64)
}

// DurableContextSink is a DurableSink whose records may take long (a
// notifier retrying a delivery): RecordContext is called instead of
// Record, with the group session's context, which ends when the group
// rebalances or the member stops. A sink that gives a record up then must
// not Commit it: whoever reads the partition next reads it again.
type DurableContextSink interface {
	DurableSink
	RecordContext(ctx context.Context, rec Record)
}

// DurableStartSink is a DurableSink that learns where each partition of
// a session starts (the committed offset, or where the setup moved it: the
// newest for a group that never committed, the oldest held after
// retention), right after Assigned. A sink that tracks what it has done
// knows from it how far it is behind (a notifier draining as it stops).
type DurableStartSink interface {
	DurableSink
	Starts(offsets map[int32]int64)
}

// Durable is a consumer group member for work that must not be lost or
// done twice, such as recording: unlike Consumer, it starts where the
// group last committed (the newest record if the group never committed),
// and commits only what its sink says is done, with metadata (Commit).
//
// A member that falls further behind than the topic's retention goes on
// from the oldest record still held (not from the newest, as sarama's
// reset would), and says what was lost (DurableSink.Skipped): when the
// partition's fetch goes out of range, the session is restarted, and its
// setup moves every committed offset older than the partition's start to
// the start.
type Durable struct {
	client  sarama.Client
	group   sarama.ConsumerGroup
	topic   string
	groupID string
	sink    DurableSink
	log     *slog.Logger

	sess      atomic.Pointer[sarama.ConsumerGroupSession]
	restart   atomic.Pointer[context.CancelFunc] // ends the running session
	consuming atomic.Bool
	errCount  atomic.Uint64
	closeOnce sync.Once
	errsDone  chan struct{}
}

// NewDurable joins groupID on client to read topic (call Run).
func NewDurable(client sarama.Client, groupID, topic string, sink DurableSink, log *slog.Logger) (*Durable, error) {
	g, err := sarama.NewConsumerGroupFromClient(groupID, client)
	if err != nil {
		return nil, fmt.Errorf("start consumer group %q: %w", groupID, err)
	}
	d := &Durable{client: client, group: g, topic: topic, groupID: groupID, sink: sink, log: log.With("group", groupID), errsDone: make(chan struct{})}
	go func() {
		defer close(d.errsDone)
		for err := range g.Errors() {
			d.errCount.Add(1)
			d.log.Warn("consumer error", "err", err)
		}
	}()
	return d, nil
}

// Run consumes until ctx ends, rejoining the group after errors.
func (d *Durable) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		d.restart.Store(&cancel)
		err := d.group.Consume(sctx, []string{d.topic}, durableHandler{d})
		cancel()
		d.consuming.Store(false)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return nil
		}
		if err != nil {
			d.log.Warn("consumer session ended, rejoining", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// Commit marks offset as the next to read of partition, with metadata,
// if this member still reads the partition; sarama commits marks every
// second and at Close.
func (d *Durable) Commit(partition int32, offset int64, metadata string) {
	s := d.sess.Load()
	if s == nil {
		return
	}
	sess := *s
	for _, p := range sess.Claims()[d.topic] {
		if p == partition {
			// MarkOffset only moves forward, and keeps the old
			// metadata when the offset is unchanged; ResetOffset
			// then sets the metadata (and any offset not ahead).
			sess.MarkOffset(d.topic, partition, offset, metadata)
			sess.ResetOffset(d.topic, partition, offset, metadata)
			return
		}
	}
}

// Flush commits the marks now, if the member is in a session.
func (d *Durable) Flush() {
	if s := d.sess.Load(); s != nil {
		(*s).Commit()
	}
}

// Ready returns nil while the member is in a group session.
func (d *Durable) Ready() error {
	if d.consuming.Load() {
		return nil
	}
	return errors.New("durable consumer: not consuming (joining group)")
}

// Errors counts the group's errors.
func (d *Durable) Errors() uint64 { return d.errCount.Load() }

// Close leaves the group, committing the last marks. It is idempotent.
func (d *Durable) Close() error {
	var err error
	d.closeOnce.Do(func() {
		err = d.group.Close()
		<-d.errsDone
	})
	if err != nil {
		return fmt.Errorf("close durable consumer: %w", err)
	}
	return nil
}

type durableHandler struct{ d *Durable }

// Setup reads the metadata committed with each claimed partition's offset
// and hands it to the sink before any record.
func (h durableHandler) Setup(sess sarama.ConsumerGroupSession) error {
	d := h.d
	admin, err := sarama.NewClusterAdminFromClient(d.client)
	if err != nil {
		return fmt.Errorf("durable setup: %w", err)
	}
	// Not closing admin: that would close the shared client.
	parts := sess.Claims()[d.topic]
	meta := make(map[int32]string, len(parts))
	resp, err := admin.ListConsumerGroupOffsets(d.groupID, map[string][]int32{d.topic: parts})
	if err != nil {
		return fmt.Errorf("durable setup: committed offsets: %w", err)
	}
	type skip struct {
		partition int32
		from, to  int64
	}
	var skips []skip
	starts := make(map[int32]int64, len(parts))
	for _, p := range parts {
		meta[p] = ""
		b := resp.GetBlock(d.topic, p)
		if b == nil || b.Err != sarama.ErrNoError {
			continue
		}
		meta[p] = b.Metadata
		starts[p] = b.Offset
		if b.Offset < 0 {
			// Never committed: from the newest, and that position is
			// committed at once, so that records written while this
			// member is away later are read when it (or another)
			// comes back, not skipped for a newer newest.
			newest, err := d.client.GetOffset(d.topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("durable setup: newest offset of %s/%d: %w", d.topic, p, err)
			}
			sess.MarkOffset(d.topic, p, newest, b.Metadata)
			starts[p] = newest
			continue
		}
		oldest, err := d.client.GetOffset(d.topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("durable setup: oldest offset of %s/%d: %w", d.topic, p, err)
		}
		if b.Offset < oldest {
			// Retention removed what this group had not read: go on
			// from the oldest record held (MarkOffset moves forward).
			sess.MarkOffset(d.topic, p, oldest, b.Metadata)
			starts[p] = oldest
			skips = append(skips, skip{p, b.Offset, oldest})
		}
	}
	d.sink.Assigned(meta)
	if s, ok := d.sink.(DurableStartSink); ok {
		s.Starts(starts)
	}
	for _, s := range skips {
		d.log.Warn("records removed by retention before they were read; going on from the oldest held",
			"topic", d.topic, "partition", s.partition, "from", s.from, "to", s.to, "records", s.to-s.from)
		d.sink.Skipped(s.partition, s.from, s.to)
	}
	d.sess.Store(&sess)
	d.consuming.Store(true)
	d.log.Info("consuming", "topic", d.topic, "partitions", len(parts), "generation", sess.GenerationID())
	return nil
}

func (h durableHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.d.consuming.Store(false)
	h.d.sess.Store(nil)
	return nil
}

func (h durableHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				if sess.Context().Err() == nil {
					// The partition consumer stopped by itself: its
					// fetch went out of range (retention removed
					// records not read yet). A new session's setup
					// goes on from the oldest record held.
					h.d.log.Warn("partition consumer stopped; restarting the session", "topic", claim.Topic(), "partition", claim.Partition())
					if cancel := h.d.restart.Load(); cancel != nil {
						(*cancel)()
					}
				}
				return nil
			}
			if cs, ok := h.d.sink.(DurableContextSink); ok {
				cs.RecordContext(sess.Context(), fromSarama(msg))
			} else {
				h.d.sink.Record(fromSarama(msg))
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// KeyReader reads the records of one key from one partition, forward from
// an offset, and says io.EOF when it has read everything written so far:
// how a recording tier is played.
type KeyReader struct {
	client   sarama.Client
	consumer sarama.Consumer
	pc       sarama.PartitionConsumer
	topic    string
	part     int32
	key      string
	next     int64 // the next offset to be delivered
	end      int64 // the high watermark when last asked
}

// NewKeyReader starts reading topic/partition at offset from (or the
// oldest record still held, if later) for records keyed key.
func NewKeyReader(client sarama.Client, topic string, partition int32, from int64, key string) (*KeyReader, error) {
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	from = max(from, oldest)
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		consumer.Close()
		return nil, fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	return &KeyReader{client: client, consumer: consumer, pc: pc, topic: topic, part: partition, key: key, next: from}, nil
}

// Next returns the key's next record; io.EOF when the partition has no
// more records now.
func (r *KeyReader) Next(ctx context.Context) (Record, error) {
	for {
		if r.next >= r.end {
			end, err := r.client.GetOffset(r.topic, r.part, sarama.OffsetNewest)
			if err != nil {
				return Record{}, fmt.Errorf("read %s/%d: %w", r.topic, r.part, err)
			}
			if r.end = end; r.next >= r.end {
				return Record{}, io.EOF
			}
		}
		select {
		case m, ok := <-r.pc.Messages():
			if !ok {
				return Record{}, io.EOF
			}
			r.next = m.Offset + 1
			if string(m.Key) == r.key {
				return fromSarama(m), nil
			}
		case perr := <-r.pc.Errors():
			return Record{}, fmt.Errorf("read %s/%d: %w", r.topic, r.part, perr.Err)
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// Close stops reading. It is idempotent.
func (r *KeyReader) Close() {
	if r.consumer != nil {
		r.pc.AsyncClose()
		r.consumer.Close()
		r.consumer = nil
	}
}
