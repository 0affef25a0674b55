package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/frame"
)

// Record is one Kafka record, independent of sarama: what Follow delivers
// and PublishRecord sends.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []frame.Header
}

// Header returns the value of the header named key, or nil.
func (r *Record) Header(key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

func fromSarama(m *sarama.ConsumerMessage) Record {
	r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		if h != nil {
			r.Headers = append(r.Headers, frame.Header{Key: string(h.Key), Value: h.Value})
		}
	}
	return r
}

// PublishRecord queues a record for topic without blocking, like Publish
// queues frames: the newest record wins when the backlog is full, and
// failures are counted. For events and snapshots, which are small and few.
func (p *Producer) PublishRecord(topic, key string, value []byte, ts time.Time, headers []frame.Header) error {
	if len(key)+len(value)+128 > p.maxBytes {
		p.tooLarge.Add(1)
		return fmt.Errorf("publish %s record %q: %d bytes: %w (%d)", topic, key, len(value), ErrTooLarge, p.maxBytes)
	}
	return p.enqueue(message(topic, key, value, ts, headers),
		func() string { return fmt.Sprintf("publish %s record %q", topic, key) })
}

// message builds the sarama message of a record: every write of streamd
// goes through it. A nil value is a tombstone (a null value, which
// removes the key from a compacted topic), unlike an empty one.
func message(topic, key string, value []byte, ts time.Time, headers []frame.Header) *sarama.ProducerMessage {
	hs := make([]sarama.RecordHeader, len(headers))
	for i, h := range headers {
		hs[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
	}
	m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Headers: hs, Timestamp: ts}
	if value != nil {
		m.Value = sarama.ByteEncoder(value)
	}
	return m
}

// Writer writes records one at a time and waits for each to be
// acknowledged: for work that must know a record is stored, and where,
// before it goes on (the recorder). Producer is the fire-and-forget kind.
type Writer struct{ sp sarama.SyncProducer }

// NewWriter starts a Writer on client (close it before the client).
func NewWriter(client sarama.Client) (*Writer, error) {
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("start writer: %w", err)
	}
	return &Writer{sp: sp}, nil
}

// Write stores one record and returns where it went.
func (w *Writer) Write(topic, key string, value []byte, ts time.Time, headers []frame.Header) (partition int32, offset int64, err error) {
	partition, offset, err = w.sp.SendMessage(message(topic, key, value, ts, headers))
	if err != nil {
		return 0, 0, fmt.Errorf("write %s record %q: %w", topic, key, err)
	}
	return partition, offset, nil
}

// Close stops the writer.
func (w *Writer) Close() error {
	if err := w.sp.Close(); err != nil {
		return fmt.Errorf("close writer: %w", err)
	}
	return nil
}

// Follow reads every partition of topic from the first record at or after
// since (or from the oldest record still held, if that is later) and hands
// each record to fn, in order per partition, until ctx ends. Partitions
// are read by plain partition consumers: no group, no committed offsets,
// so every caller sees everything (what each web node needs of the events
// topic). fn is called from one goroutine per partition.
func Follow(ctx context.Context, client sarama.Client, topic string, since time.Time, fn func(Record), log *slog.Logger) error {
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("follow %s: partitions: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	defer consumer.Close()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		start, err := OffsetAt(client, topic, p, since)
		if err != nil {
			return fmt.Errorf("follow %s: %w", topic, err)
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return fmt.Errorf("follow %s/%d from %d: %w", topic, p, start, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					fn(fromSarama(m))
				case perr, ok := <-pc.Errors():
					if !ok {
						return
					}
					log.Warn("follow: partition error", "topic", topic, "partition", p, "err", perr.Err)
					if errors.Is(perr.Err, sarama.ErrOffsetOutOfRange) {
						errs <- perr.Err
						return
					}
				}
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("follow %s: %w", topic, err)
}

// OffsetAt returns the offset of the first record of topic/partition
// captured at or after t; the next offset to be written if there is none.
func OffsetAt(client sarama.Client, topic string, partition int32, t time.Time) (int64, error) {
	off, err := client.GetOffset(topic, partition, t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("offset of %s/%d at %s: %w", topic, partition, t.Format(time.RFC3339), err)
	}
	if off < 0 { // nothing at or after t
		if off, err = client.GetOffset(topic, partition, sarama.OffsetNewest); err != nil {
			return 0, fmt.Errorf("newest offset of %s/%d: %w", topic, partition, err)
		}
	}
	return off, nil
}

// FetchOne reads the single record at topic/partition/offset, waiting at
// most timeout for it.
func FetchOne(client sarama.Client, topic string, partition int32, offset int64, timeout time.Duration) (Record, error) {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return Record{}, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, offset)
	if err != nil {
		return Record{}, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, err)
	}
	defer pc.AsyncClose()
	select {
	case m := <-pc.Messages():
		if m.Offset != offset {
			return Record{}, fmt.Errorf("fetch %s/%d@%d: the record is gone (retention); next is %d", topic, partition, offset, m.Offset)
		}
		return fromSarama(m), nil
	case perr := <-pc.Errors():
		return Record{}, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, perr.Err)
	case <-time.After(timeout):
		return Record{}, fmt.Errorf("fetch %s/%d@%d: no record within %s", topic, partition, offset, timeout)
	}
}

// Scan reads the records of topic/partition from offset from, at most
// limit of them and none past the newest written when it starts, calling
// fn for each until it returns false. It waits at most timeout in all.
func Scan(client sarama.Client, topic string, partition int32, from int64, limit int, timeout time.Duration, fn func(Record) bool) error {
	err := scan(client, topic, partition, from, limit, timeout, fn)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		// Retention removed the start meanwhile: once more from the
		// new oldest record.
		err = scan(client, topic, partition, from, limit, timeout, fn)
	}
	return err
}

func scan(client sarama.Client, topic string, partition int32, from int64, limit int, timeout time.Duration, fn func(Record) bool) error {
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("scan %s/%d: %w", topic, partition, err)
	}
	hwm, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("scan %s/%d: %w", topic, partition, err)
	}
	from = max(from, oldest)
	end := min(hwm, from+int64(limit))
	if from >= end {
		return nil
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("scan %s/%d: %w", topic, partition, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return fmt.Errorf("scan %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.AsyncClose()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m := <-pc.Messages():
			if !fn(fromSarama(m)) || m.Offset+1 >= end {
				return nil
			}
		case perr := <-pc.Errors():
			return fmt.Errorf("scan %s/%d: %w", topic, partition, perr.Err)
		case <-deadline.C:
			return fmt.Errorf("scan %s/%d: not done within %s", topic, partition, timeout)
		}
	}
}
