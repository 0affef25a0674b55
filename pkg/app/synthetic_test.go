//go:build !nocv

package app

import (
	"bytes"
	"image/jpeg"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/analysis"
	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/capture"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
	"github.com/streamd/streamd/pkg/recorder"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// synthCamera plays camera cfg.Cameras[0] in capture time instead of
// wall time, so that minutes of recording take seconds. The test is the
// camera: the capture supervisor runs with no camera, and the test
// publishes the clip's frames through a producer of its own on the
// supervisor's Kafka client,
// 1/30 s of capture time apart, as fast as the analyzer and the recorder
// take them. The analyzer runs on the capture clock (the newest capture
// time published), and the broker applies retention (by record
// timestamp: the capture time, as Kafka does) every second of capture
// time, at points where every frame published has been read, as a
// recorder that keeps up would have read them.
type synthCamera struct {
	t      *testing.T
	a      *App
	jpegs  [][]byte
	w, h   int
	clock  atomic.Int64 // newest capture time published, unix ns
	seq    uint64
	next   time.Time // capture time of the next frame
	prod   *kafka.Producer
	rec    *recorder.Recorder
	an     *analysis.Analysis
	period time.Duration
}

// startSynthetic builds the App of cfg, whose first camera the test plays
// from capture time start on, and starts it.
func startSynthetic(t *testing.T, cfg *config.Config, start time.Time) (*synthCamera, string) {
	t.Helper()
	return startSyntheticWith(t, cfg, start, nil)
}

// startSyntheticWith is startSynthetic with tune called on the App before
// it starts.
func startSyntheticWith(t *testing.T, cfg *config.Config, start time.Time, tune func(*App)) (*synthCamera, string) {
	t.Helper()
	cc := cfg.Cameras[0]
	frames, err := visiontest.ReadVideo(cc.Source, 0, 0, 0, cc.Quality)
	if err != nil {
		t.Fatal(err)
	}
	s := &synthCamera{t: t, next: start, period: time.Second / 30}
	for _, f := range frames {
		s.jpegs = append(s.jpegs, f.JPEG)
	}
	size, err := jpeg.DecodeConfig(bytes.NewReader(s.jpegs[0]))
	if err != nil {
		t.Fatal(err)
	}
	s.w, s.h = size.Width, size.Height
	s.clock.Store(start.UnixNano())
	s.a = newApp(t, cfg, func(a *App) { a.clock = func() time.Time { return time.Unix(0, s.clock.Load()) } })
	sup := false
	for _, c := range s.a.components {
		switch c := c.(type) {
		case cameras:
			c.Supervisor.Reload(nil) // the test is the camera
			sup = true
		case analyze:
			s.an = c.Analysis
		case *recorder.Recorder:
			s.rec = c
		}
	}
	if !sup || s.an == nil || s.rec == nil || s.a.broker == nil {
		t.Fatal("synthetic camera: the config has no camera, analyzer, recorder or embedded broker")
	}
	if tune != nil {
		tune(s.a)
	}
	if err := s.a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.a.Shutdown(t.Context()) })
	base := "http://" + s.a.HTTPAddr()
	waitStatus(t, base+"/readyz", 200)
	client, err := s.a.kafka.Await(t.Context(), capture.ProducerClient)
	if err != nil {
		t.Fatal(err)
	}
	s.prod, err = kafka.NewProducer(client, cfg.Kafka.Topic, cfg.Kafka.MaxMessageBytes, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.prod.Close() }) // before the App's shutdown (cleanups run last first)
	return s, base
}

// taken is the capture time of the newest frame the recorder has read.
func (s *synthCamera) taken() time.Time {
	for _, p := range s.rec.Progress() {
		return p.Taken
	}
	return time.Time{}
}

// analyzedUpTo is the capture time of the analyzer's last frame.
func (s *synthCamera) analyzedUpTo() time.Time {
	for _, st := range s.an.AnalysisStatus().([]analyzer.Stats) {
		return st.LastCaptured
	}
	return time.Time{}
}

// settle waits until the recorder has read every frame published up to
// behind before the newest, and the analyzer has analyzed one at most
// lag behind the newest.
func (s *synthCamera) settle(behind, lag time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	newest := time.Unix(0, s.clock.Load())
	for s.taken().Before(newest.Add(-behind)) || s.analyzedUpTo().Before(newest.Add(-lag)) {
		if time.Now().After(deadline) {
			s.t.Fatalf("synthetic camera: after %d frames up to %s, the recorder has read up to %s, the analyzer %s", s.seq, newest, s.taken(), s.analyzedUpTo())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// play publishes frames up to capture time until, never one captured
// after the wall clock's now.
func (s *synthCamera) play(until time.Time) {
	s.t.Helper()
	prod := s.prod
	for !s.next.After(until) {
		s.publishNext()
		if s.seq%10 == 0 {
			s.settle(10*s.period, 400*time.Millisecond)
		}
		if s.seq%30 == 0 {
			s.settle(0, 100*time.Millisecond)
			s.a.broker.b.ApplyRetention()
		}
	}
	s.settle(0, 0)
	s.a.broker.b.ApplyRetention()
	if st := prod.Stats(); st.Failed > 0 || st.Backlog > 0 || st.TooLarge > 0 {
		s.t.Fatalf("synthetic camera: frames lost: %+v", st)
	}
}

// oldestFrame is the capture time of the oldest frame the frames topic
// holds.
func (s *synthCamera) oldestFrame() time.Time {
	s.t.Helper()
	client, err := sarama.NewClient([]string{s.a.BrokerAddr()}, sarama.NewConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	defer client.Close()
	var oldest time.Time
	readAll(s.t, client, s.a.cfg.Kafka.Topic, func(m *sarama.ConsumerMessage) {
		if oldest.IsZero() || m.Timestamp.Before(oldest) {
			oldest = m.Timestamp // the record timestamp is the capture time
		}
	})
	if oldest.IsZero() {
		s.t.Fatal("the frames topic holds no frame")
	}
	return oldest
}

// publish publishes frames up to capture time until without waiting for
// the analyzer or the recorder (never one captured after now).
func (s *synthCamera) publish(until time.Time) {
	s.t.Helper()
	for !s.next.After(until) {
		s.publishNext()
		// Stay within the producer's backlog: wait for the broker.
		for deadline := time.Now().Add(10 * time.Second); s.prod.Stats().Sent+16 < s.seq; {
			if time.Now().After(deadline) {
				s.t.Fatalf("synthetic camera: %d of %d frames acknowledged after 10 s", s.prod.Stats().Sent, s.seq)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// publishNext publishes the next frame, once the wall clock has reached
// its capture time, and moves the capture clock to it.
func (s *synthCamera) publishNext() {
	s.t.Helper()
	if wait := time.Until(s.next); wait > 0 {
		time.Sleep(wait)
	}
	f := &frame.Frame{Camera: s.a.cfg.Cameras[0].ID, Seq: s.seq, CapturedAt: s.next, Width: s.w, Height: s.h,
		ContentType: frame.TypeJPEG, Data: s.jpegs[int(s.seq)%len(s.jpegs)]}
	s.clock.Store(s.next.UnixNano())
	if err := s.prod.Publish(f); err != nil {
		s.t.Fatalf("synthetic camera: frame %d: %v", s.seq, err)
	}
	s.seq++
	s.next = s.next.Add(s.period)
}
