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
	ErrTooLarge    = errors.New("frame larger than kafka.max_message_bytes")
	ErrBacklogFull = errors.New("producer backlog full")
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

	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}

	sent, failed, tooLarge, backlog atomic.Uint64
	lastErr                         atomic.Pointer[string]
	lastErrAt, lastOKAt             atomic.Int64
	errLog                          *lograte.Limiter
}

// NewProducer starts an asynchronous producer on client. Close it (before
// the client) to flush what was accepted.
func NewProducer(client sarama.Client, topic string, maxMessageBytes int, log *slog.Logger) (*Producer, error) {
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("start producer: %w", err)
	}
	p := &Producer{
		ap: ap, topic: topic, maxBytes: maxMessageBytes, log: log,
		done:   make(chan struct{}),
		errLog: lograte.New(time.Second),
	}
	go p.drain()
	return p, nil
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
// frame over the limit and ErrBacklogFull when the broker cannot keep up;
// in both cases the frame is dropped and counted, and the caller goes on
// with the next frame.
func (p *Producer) Publish(f *frame.Frame) error {
	size := len(f.Camera) + len(f.Data) + 128
	if size > p.maxBytes {
		p.tooLarge.Add(1)
		return fmt.Errorf("publish camera %q frame %d: %d bytes: %w (%d)", f.Camera, f.Seq, len(f.Data), ErrTooLarge, p.maxBytes)
	}
	hs := f.Headers()
	headers := make([]sarama.RecordHeader, len(hs))
	for i, h := range hs {
		headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
	}
	msg := &sarama.ProducerMessage{
		Topic:     p.topic,
		Key:       sarama.StringEncoder(f.Camera),
		Value:     sarama.ByteEncoder(f.Data),
		Headers:   headers,
		Timestamp: f.CapturedAt,
	}
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.ap.Input() <- msg:
		return nil
	default:
		p.backlog.Add(1)
		return fmt.Errorf("publish camera %q frame %d: %w", f.Camera, f.Seq, ErrBacklogFull)
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
	p.closeMu.Unlock()
	p.ap.AsyncClose()
	<-p.done
	return nil
}
