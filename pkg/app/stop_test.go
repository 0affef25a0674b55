//go:build !nocv

package app

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/recorder"
)

// A recorder whose encoding cannot keep up has a backlog when it is
// stopped: the stop still ends within the recorder's stop budget, with no
// component reported stuck (it used to encode the whole backlog first:
// 37-47 s on the shipped default), and what it had not written is
// recorded after the restart, from the committed offsets, with no gap and
// nothing twice.
func TestStopWithARecorderBacklog(t *testing.T) {
	t.Parallel() // mostly waiting, like the recording scenarios
	cfg := recordingConfig(t, "", map[string]string{"recording.enabled": "false"})
	a, base := startRecording(t, cfg)
	waitStatus(t, base+"/snapshot/p", 200)
	recorderApp := func(slow time.Duration) *App {
		rc, err := config.Load(config.Sources{Overrides: map[string]string{
			"role": "recorder", "http.listen": "127.0.0.1:0", "embedded.enabled": "false", "recording.full_on": "motion",
			"kafka.brokers": a.BrokerAddr(), "kafka.partitions": "2", "recording.partitions": "1",
			"recording.pre_roll": "2s", "recording.post_roll": "1s", "recording.chunk": "500ms",
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := newApp(t, rc)
		for _, c := range r.components {
			if rec, ok := c.(*recorder.Recorder); ok && slow > 0 {
				rec.WrapEncoder(func(enc recorder.Encoder) recorder.Encoder {
					return func(ch record.Chunk) ([]byte, error) {
						time.Sleep(slow) // an encoder slower than the camera
						return enc(ch)
					}
				})
			}
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, "http://"+r.HTTPAddr()+"/readyz", 200)
		return r
	}
	// Chunks of 0.5 s that take 1.5 s each to encode: within seconds of
	// an event's window the recorder is behind by many chunks (the clip
	// moves every few seconds; a loaded machine decides events later).
	// Falling behind shows in its metric.
	r1 := recorderApp(1500 * time.Millisecond)
	time.Sleep(10 * time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		lag := recorderMetric(t, "http://"+r1.HTTPAddr(), "streamd_recorder_lag_seconds", "p")
		if lag >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streamd_recorder_lag_seconds = %.1f s after 40 s of an encoder 3x slower than the camera", lag)
		}
	}
	// The web node, whose process records nothing, shows the lag the
	// recorder wrote to the index topic.
	var st struct {
		Cameras []struct {
			Camera      string
			RecorderLag *float64 `json:"recorder_lag_seconds"`
		}
	}
	getJSON(t, base+"/api/storage", &st)
	if len(st.Cameras) != 1 || st.Cameras[0].RecorderLag == nil || *st.Cameras[0].RecorderLag < 2 {
		t.Errorf("the web node's /api/storage %+v: want camera p's recorder_lag_seconds of 2 s or more", st.Cameras)
	}
	// The reduced tier does not wait for the encoders: its newest frame
	// is a second or two old.
	if newest := newestReduced(t, a.BrokerAddr(), cfg.Record.ReducedTopic); time.Since(newest) > 3*time.Second {
		t.Errorf("the reduced tier's newest frame was captured %s ago while the full tier is behind: it waits for the encoders", time.Since(newest).Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatalf("stopping a recorder with a backlog: %v", err)
	}
	if took := time.Since(start); took > recorder.StopBudget+time.Second {
		t.Fatalf("stopping a recorder with a backlog took %s, its stop budget is %s", took, recorder.StopBudget)
	}
	r2 := recorderApp(0)
	time.Sleep(12 * time.Second)
	if err := r2.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkRecording(t, a.BrokerAddr(), cfg.Record, nil)
}

// newestReduced returns the capture time of the newest reduced-tier frame.
func newestReduced(t *testing.T, brokerAddr, topic string) time.Time {
	t.Helper()
	client, err := sarama.NewClient([]string{brokerAddr}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var newest time.Time
	readAll(t, client, topic, func(m *sarama.ConsumerMessage) {
		if m.Timestamp.After(newest) {
			newest = m.Timestamp
		}
	})
	return newest
}
