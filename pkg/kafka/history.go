package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/frame"
)

// History reads one camera's frames from a topic in capture order, from a
// time on, and then keeps following new ones. It reads the partitions it is
// given with plain partition consumers (no group, no committed offsets) and
// keeps only the camera's key; records of other cameras are skipped. With
// several partitions (two producers that hash keys differently), frames
// are merged by capture time.
//
// Memory is bounded by the client's configuration: each partition buffers
// at most ChannelBufferSize records plus one fetch.
type History struct {
	camera   string
	since    time.Time // frames captured before it are skipped (offsets-for-times has millisecond precision)
	maxBytes int
	consumer sarama.Consumer
	parts    []*historyPart
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   bool
}

// historyPart is one partition's reader and its next frame, if read.
type historyPart struct {
	pc       sarama.PartitionConsumer
	out      chan *frame.Frame // the camera's frames, in offset order
	head     *frame.Frame      // taken from out, not yet returned
	consumed atomic.Int64      // offset after the last record read, any camera's
}

// caughtUp reports whether every record written to the partition so far
// has been read.
func (hp *historyPart) caughtUp() bool {
	return hp.consumed.Load() >= hp.pc.HighWaterMarkOffset()
}

// OpenHistory starts reading camera's frames of topic from since, on
// partitions. A time older than what the topic holds starts at the oldest
// record held.
func OpenHistory(client sarama.Client, topic, camera string, partitions []int32, since time.Time, maxBytes int) (*History, error) {
	if len(partitions) == 0 {
		return nil, fmt.Errorf("history of camera %q: no partitions", camera)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("history of camera %q: %w", camera, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &History{camera: camera, since: since, maxBytes: maxBytes, consumer: consumer, cancel: cancel}
	for _, p := range partitions {
		start, err := OffsetAt(client, topic, p, since)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("history of camera %q: %w", camera, err)
		}
		first, next := h.prefetch(client, topic, p, start)
		pc, err := consumer.ConsumePartition(topic, p, next)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("history of camera %q: %s/%d from %d: %w", camera, topic, p, next, err)
		}
		hp := &historyPart{pc: pc, out: make(chan *frame.Frame, 2+len(first))}
		for _, f := range first {
			hp.out <- f
		}
		hp.consumed.Store(next)
		h.parts = append(h.parts, hp)
		h.wg.Add(1)
		go h.read(ctx, hp)
	}
	return h, nil
}

// prefetchBytes is how much the first, direct fetch reads: a few frames.
const prefetchBytes = 256 << 10

// prefetch reads the records at start with one direct fetch and returns the
// camera's frames among them and the offset to go on from. sarama holds a
// new partition consumer for 100 ms (to batch subscriptions) before its
// first fetch; this way a replay's first frames are there at once, and the
// partition consumer starts while they are shown. On any error it returns
// nothing and start, and the partition consumer reads everything.
func (h *History) prefetch(client sarama.Client, topic string, partition int32, start int64) ([]*frame.Frame, int64) {
	leader, err := client.Leader(topic, partition)
	if err != nil {
		return nil, start
	}
	// Kafka returns the first record even when it is larger than this.
	size := int32(prefetchBytes)
	req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 0, MinBytes: 0, MaxBytes: size, Isolation: sarama.ReadUncommitted}
	req.AddBlock(topic, partition, start, size, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		return nil, start
	}
	blk := resp.GetBlock(topic, partition)
	if blk == nil || blk.Err != sarama.ErrNoError {
		return nil, start
	}
	var frames []*frame.Frame
	next := start
	for _, rs := range blk.RecordsSet {
		rb := rs.RecordBatch
		if rb == nil || rb.Control {
			continue
		}
		for _, r := range rb.Records {
			off := rb.FirstOffset + r.OffsetDelta
			if off < start {
				continue
			}
			next = off + 1
			if !h.wanted(r.Key) || h.maxBytes > 0 && len(r.Value) > h.maxBytes {
				continue
			}
			hs := make([]frame.Header, 0, len(r.Headers))
			for _, hd := range r.Headers {
				hs = append(hs, frame.Header{Key: string(hd.Key), Value: hd.Value})
			}
			f, err := frame.Decode(r.Key, bytes.Clone(r.Value), hs, rb.FirstTimestamp.Add(r.TimestampDelta), uint64(off))
			if err != nil || f.CapturedAt.Before(h.since) || f.Rendition != "" {
				continue
			}
			f.ReceivedAt = time.Now()
			f.Partition, f.Offset = partition, off
			frames = append(frames, f)
		}
	}
	return frames, next
}

// wanted reports whether a record key is the camera's.
func (h *History) wanted(key []byte) bool {
	return string(key) == h.camera || len(key) == 0 && h.camera == frame.UnkeyedCamera
}

// read decodes one partition's records and passes on the camera's frames.
func (h *History) read(ctx context.Context, hp *historyPart) {
	defer h.wg.Done()
	defer close(hp.out)
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-hp.pc.Messages():
			if !ok {
				return
			}
			hp.consumed.Store(m.Offset + 1)
			if !h.wanted(m.Key) {
				continue
			}
			if h.maxBytes > 0 && len(m.Value) > h.maxBytes {
				continue
			}
			r := fromSarama(m)
			// A copy: the value is a slice of the whole fetch response,
			// which would otherwise stay in memory as long as any of
			// its frames waits (megabytes per replay viewer).
			f, err := frame.Decode(r.Key, bytes.Clone(r.Value), r.Headers, r.Timestamp, uint64(r.Offset))
			if err != nil {
				continue
			}
			if f.CapturedAt.Before(h.since) || f.Rendition != "" { // replays show the main stream
				continue
			}
			f.ReceivedAt = time.Now()
			f.Partition, f.Offset = m.Partition, m.Offset
			select {
			case hp.out <- f:
			case <-ctx.Done():
				return
			}
		case <-hp.pc.Errors():
			// Errors are retried by sarama; an offset out of range
			// (retention removed what we were reading) ends the
			// partition, and Next reports it.
		}
	}
}

// ErrHistoryEnded is returned by Next when every partition stopped (the
// records were removed by retention under the reader, or Close).
var ErrHistoryEnded = errors.New("history ended")

// Next returns the camera's next frame in capture order, waiting for new
// ones at the end. With several partitions it waits until each has a frame
// or has none left to read now, then returns the oldest.
func (h *History) Next(ctx context.Context) (*frame.Frame, error) {
	if len(h.parts) == 1 {
		hp := h.parts[0]
		if hp.head != nil {
			f := hp.head
			hp.head = nil
			return f, nil
		}
		select {
		case f, ok := <-hp.out:
			if !ok {
				return nil, ErrHistoryEnded
			}
			return f, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for {
		var best *historyPart
		pending, open := false, 0
		for _, hp := range h.parts {
			if hp.head == nil && hp.out != nil {
				select {
				case f, ok := <-hp.out:
					if !ok {
						hp.out = nil
					} else {
						hp.head = f
					}
				default:
					// Nothing buffered: wait for this partition
					// while it has records left to read.
					pending = pending || !hp.caughtUp()
				}
			}
			if hp.out != nil || hp.head != nil {
				open++
			}
			if hp.head != nil && (best == nil || hp.head.CapturedAt.Before(best.head.CapturedAt)) {
				best = hp
			}
		}
		if open == 0 {
			return nil, ErrHistoryEnded
		}
		if best != nil && !pending {
			f := best.head
			best.head = nil
			return f, nil
		}
		// Several partitions are rare (two producers with different
		// partitioners): a short poll keeps this simple.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close stops reading. It is idempotent.
func (h *History) Close() {
	if h.closed {
		return
	}
	h.closed = true
	h.cancel()
	for _, hp := range h.parts {
		hp.pc.AsyncClose()
	}
	h.wg.Wait()
	_ = h.consumer.Close()
}
