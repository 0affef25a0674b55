package kafka

import (
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

// Errors returned by Producer.Publish.
var (
	ErrTooLarge    = errors.New("frame larger than the largest record allowed")
	ErrBacklogFull = errors.New("producer backlog full (broker slow or unreachable)")
	ErrClosed      = errors.New("producer closed")
)

// ProducerStats counts what a Producer did.
type ProducerStats struct {
	Sent      uint64 // acknowledged by the broker
	Failed    uint64 // rejected or undeliverable after retries
	TooLarge  uint64 // refused before sending
	Backlog   uint64 // dropped because the send queue was full
	LastError string
}

// Producer publishes frames to the frames topic asynchronously.
type Producer struct {
	ap       sarama.AsyncProducer
	topic    string
	maxBytes int
	log      *slog.Logger

	// queue holds frames waiting for sarama (whose Input channel is
	// unbuffered); when it is full the oldest queued frame is dropped.
	queue     chan *sarama.ProducerMessage
	forwarded chan struct{}

	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}

	sent, failed, tooLarge, backlog atomic.Uint64
	lastErr                         atomic.Pointer[string]
	lastErrAt, lastOKAt             atomic.Int64
	errLog                          *lograte.Limiter
}

// DefaultBacklog is how many frames may wait for the broker before the
// oldest waiting frame is dropped.
const DefaultBacklog = 64

// NewProducer starts an asynchronous producer on client. Up to backlog frames
// (DefaultBacklog if 0) wait for the broker; past that the oldest waiting
// frame is dropped, so a slow or absent broker never blocks capture and
// memory stays bounded. Close it (before the client) to flush what was
// accepted.
func NewProducer(client sarama.Client, topic string, maxMessageBytes, backlog int, log *slog.Logger) (*Producer, error) {
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("start producer: %w", err)
	}
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	p := &Producer{
		ap: ap, topic: topic, maxBytes: maxMessageBytes, log: log,
		queue:     make(chan *sarama.ProducerMessage, backlog),
		forwarded: make(chan struct{}),
		done:      make(chan struct{}),
		errLog:    lograte.New(time.Second),
	}
	go p.forward()
	go p.drain()
	return p, nil
}

func (p *Producer) forward() {
	defer close(p.forwarded)
	for msg := range p.queue {
		p.ap.Input() <- msg
	}
}

func (p *Producer) drain() {
	defer close(p.done)
	succ, errs := p.ap.Successes(), p.ap.Errors()
	for succ != nil || errs != nil {
		select {
		case _, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			p.sent.Add(1)
			p.lastOKAt.Store(time.Now().UnixNano())
		case perr, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			p.failed.Add(1)
			msg := perr.Err.Error()
			p.lastErr.Store(&msg)
			p.lastErrAt.Store(time.Now().UnixNano())
			if ok, suppressed := p.errLog.Allow(); ok {
				camera, _ := perr.Msg.Key.Encode()
				p.log.Warn("frame not delivered", "camera", string(camera), "err", perr.Err, "similar_errors_suppressed", suppressed)
			}
		}
	}
}

// Publish queues f for sending without blocking. It returns ErrTooLarge for a
// frame over the limit (the frame is dropped) and ErrBacklogFull when the
// broker cannot keep up (an older waiting frame was dropped for f); drops
// are counted, and the caller goes on with the next frame.
func (p *Producer) Publish(f *frame.Frame) error {
	size := len(f.Camera) + len(f.Data) + 128
	if size > p.maxBytes {
		p.tooLarge.Add(1)
		return fmt.Errorf("publish camera %q frame %d: %d bytes: %w (%d)", f.Camera, f.Seq, len(f.Data), ErrTooLarge, p.maxBytes)
	}
	msg := message(p.topic, f.Camera, f.Data, f.CapturedAt, f.Headers())
	return p.enqueue(msg, func() string { return fmt.Sprintf("publish camera %q frame %d", f.Camera, f.Seq) })
}

// enqueue queues msg without blocking; when the queue is full the oldest
// waiting message is dropped for it. what names msg in errors.
func (p *Producer) enqueue(msg *sarama.ProducerMessage, what func() string) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.queue <- msg:
		return nil
	default:
	}
	// Full: the newest frame wins over the oldest waiting one.
	var dropped *sarama.ProducerMessage
	select {
	case dropped = <-p.queue:
		p.backlog.Add(1)
	default:
	}
	select {
	case p.queue <- msg:
		if dropped != nil {
			return fmt.Errorf("%s: %w: dropped an older waiting frame", what(), ErrBacklogFull)
		}
		return nil
	default:
		p.backlog.Add(1)
		return fmt.Errorf("%s: %w", what(), ErrBacklogFull)
	}
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	s := ProducerStats{Sent: p.sent.Load(), Failed: p.failed.Load(), TooLarge: p.tooLarge.Load(), Backlog: p.backlog.Load()}
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Ready returns nil while frames are being delivered: no delivery error, or
// a success since the last one.
func (p *Producer) Ready() error {
	errAt := p.lastErrAt.Load()
	if errAt == 0 || p.lastOKAt.Load() > errAt {
		return nil
	}
	if e := p.lastErr.Load(); e != nil {
		return fmt.Errorf("producer: last delivery failed: %s", *e)
	}
	return errors.New("producer: last delivery failed")
}

// Close stops accepting frames and waits until every accepted frame was
// delivered or failed. It is idempotent.
func (p *Producer) Close() error {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	close(p.queue)
	p.closeMu.Unlock()
	<-p.forwarded
	p.ap.AsyncClose()
	<-p.done
	return nil
}
