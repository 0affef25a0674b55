package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/lograte"
)

// ConsumerStats counts what a Consumer did.
type ConsumerStats struct {
	Consumed uint64 // records that became frames
	Invalid  uint64 // records skipped: not an image, truncated, too large, or a bad key
	Errors   uint64 // consumer group errors
}

// Consumer reads frames with a consumer group and hands each to a sink.
//
// Every viewer node must see every camera, so each node uses its own group
// (see Group): within it, this process owns all partitions. When the group's
// session starts, each partition is moved to its newest record, so a node
// that starts or restarts shows live frames at once rather than replaying
// the backlog.
type Consumer struct {
	client   sarama.Client
	group    sarama.ConsumerGroup
	topic    string
	sink     func(*frame.Frame)
	log      *slog.Logger
	maxBytes int

	consuming           atomic.Bool
	lastErr             atomic.Pointer[string]
	consumed, invalid   atomic.Uint64
	errCount            atomic.Uint64
	invalidLog, errsLog *lograte.Limiter

	closeOnce sync.Once
	done      chan struct{}
	errsDone  chan struct{} // closed when the error-logging goroutine ends
}

// NewConsumer joins group on client (it does not start consuming; call Run).
// Records whose value is larger than maxBytes (0: no limit) are skipped and
// counted as invalid.
func NewConsumer(client sarama.Client, groupID, topic string, maxBytes int, sink func(*frame.Frame), log *slog.Logger) (*Consumer, error) {
	g, err := sarama.NewConsumerGroupFromClient(groupID, client)
	if err != nil {
		return nil, fmt.Errorf("start consumer group %q: %w", groupID, err)
	}
	c := &Consumer{
		client: client, group: g, topic: topic, sink: sink, log: log.With("group", groupID), maxBytes: maxBytes,
		invalidLog: lograte.New(time.Second), errsLog: lograte.New(time.Second),
		done: make(chan struct{}), errsDone: make(chan struct{}),
	}
	go c.logErrors()
	return c, nil
}

// logErrors counts and logs the group's errors until Close ends the group.
func (c *Consumer) logErrors() {
	defer close(c.errsDone)
	for err := range c.group.Errors() {
		c.errCount.Add(1)
		c.setErr(err)
		if ok, n := c.errsLog.Allow(); ok {
			c.log.Warn("consumer error", "err", err, "similar_errors_suppressed", n)
		}
	}
}

// Run consumes until ctx ends, rejoining the group after errors with a
// back-off. It returns nil when ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	defer close(c.done)
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.group.Consume(ctx, []string{c.topic}, handler{c})
		c.consuming.Store(false)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return nil
		}
		if err != nil {
			c.setErr(err)
			c.log.Warn("consumer session ended, rejoining", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			if time.Since(start) > time.Minute {
				backoff = 250 * time.Millisecond
			} else {
				// At most 2 s: viewers get frames again soon after
				// the broker returns.
				backoff = min(backoff*2, 2*time.Second)
			}
		}
	}
	return nil
}

func (c *Consumer) setErr(err error) {
	msg := err.Error()
	c.lastErr.Store(&msg)
}

// Ready returns nil while the consumer is in a group session.
func (c *Consumer) Ready() error {
	if c.consuming.Load() {
		return nil
	}
	if e := c.lastErr.Load(); e != nil {
		return fmt.Errorf("consumer: not consuming: %s", *e)
	}
	return errors.New("consumer: not consuming yet (joining group)")
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Consumed: c.consumed.Load(), Invalid: c.invalid.Load(), Errors: c.errCount.Load()}
}

func truncateKey(k []byte) string {
	if len(k) > 64 {
		return string(k[:64]) + "…"
	}
	return string(k)
}

// Close leaves the group, committing marked offsets, and returns once
// nothing more will be logged or counted. It is idempotent.
func (c *Consumer) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.group.Close()
		<-c.errsDone
	})
	if err != nil {
		return fmt.Errorf("close consumer: %w", err)
	}
	return nil
}

// handle turns one record into a frame for the sink.
func (c *Consumer) handle(msg *sarama.ConsumerMessage) {
	headers := make([]frame.Header, 0, len(msg.Headers))
	for _, h := range msg.Headers {
		if h != nil {
			headers = append(headers, frame.Header{Key: string(h.Key), Value: h.Value})
		}
	}
	var f *frame.Frame
	var err error
	if c.maxBytes > 0 && len(msg.Value) > c.maxBytes {
		err = fmt.Errorf("record of %d bytes for key %q: %w (limit %d bytes)", len(msg.Value), truncateKey(msg.Key), frame.ErrTooLarge, c.maxBytes)
	} else {
		f, err = frame.Decode(msg.Key, msg.Value, headers, msg.Timestamp, uint64(msg.Offset))
	}
	if err != nil {
		c.invalid.Add(1)
		if ok, n := c.invalidLog.Allow(); ok {
			c.log.Warn("skipping record", "partition", msg.Partition, "offset", msg.Offset, "err", err, "similar_skipped", n)
		}
		return
	}
	f.ReceivedAt = time.Now()
	f.Partition, f.Offset = msg.Partition, msg.Offset
	c.consumed.Add(1)
	c.sink(f)
}

type handler struct{ c *Consumer }

// Setup moves every claimed partition to its newest record (unless the
// group's committed offset is later), so viewers get live frames at once,
// and marks the consumer as consuming.
func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	for topic, parts := range sess.Claims() {
		for _, p := range parts {
			newest, err := h.c.client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("consumer setup: newest offset of %s/%d: %w", topic, p, err)
			}
			// Resolve the start now, not when the partition consumer
			// starts later: everything produced after Ready is seen.
			// The last record of the partition is delivered first.
			sess.MarkOffset(topic, p, max(newest-1, 0), "")
		}
	}
	h.c.consuming.Store(true)
	h.c.log.Info("consuming", "topic", h.c.topic, "partitions", len(sess.Claims()[h.c.topic]), "generation", sess.GenerationID())
	return nil
}

// Cleanup marks the consumer as not consuming.
func (h handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.c.consuming.Store(false)
	return nil
}

// ConsumeClaim hands each record of a partition to the sink.
func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.c.handle(msg)
			sess.MarkMessage(msg, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}
