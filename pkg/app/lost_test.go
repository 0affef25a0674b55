//go:build !nocv

package app

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/bench"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/recorder"
)

// A recorder that falls further behind than the frames topic's retention
// goes on from the oldest frame still held, instead of stalling on the
// partition (or jumping to the newest), and counts the frames it never
// recorded, in /metrics and in /api/storage.
func TestRecorderBehindRetentionCountsWhatIsLost(t *testing.T) {
	t.Parallel() // the recording scenarios run side by side
	cfg := recordingConfig(t, "", map[string]string{"embedded.retention_check": "1h", "kafka.partitions": "1", "recording.chunk": "1s"})
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond)
	var gate sync.Mutex // held: the encoder waits (a recorder far slower than the camera)
	cam, base := startSyntheticWith(t, cfg, start, func(a *App) {
		for _, c := range a.components {
			if rec, ok := c.(*recorder.Recorder); ok {
				rec.WrapEncoder(func(enc recorder.Encoder) recorder.Encoder {
					return func(ch record.Chunk) ([]byte, error) {
						gate.Lock()
						defer gate.Unlock()
						return enc(ch)
					}
				})
			}
		}
	})
	// Five seconds recorded as the camera goes, and committed.
	cam.play(start.Add(5 * time.Second))
	time.Sleep(2500 * time.Millisecond) // the recorder commits every second
	// Then the encoder stops, and the recorder stops reading; the camera
	// goes on for 40 s of capture time, and retention (30 s) removes
	// all of it, as it ages past the retention while the recorder waits.
	gate.Lock()
	released := false
	release := func() {
		if !released {
			released = true
			gate.Unlock()
		}
	}
	t.Cleanup(release)
	cam.publish(start.Add(45 * time.Second))
	cam.a.broker.b.ApplyRetention()
	published := cam.seq
	// Ten seconds more, held by the frames topic, then the encoder
	// works again.
	cam.publish(start.Add(55 * time.Second))
	release()

	deadline := time.Now().Add(30 * time.Second)
	newest := start.Add(55 * time.Second)
	for cam.taken().Before(newest.Add(-time.Second)) {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder stalled: it read up to %s, the camera is at %s", cam.taken(), newest)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lost := recorderMetric(t, base, "streamd_recorder_lost_frames_total", "p")
	// At most what retention removed (frames 5-45 s); at least what the
	// recorder had not fetched when it stopped reading (sarama buffers a
	// few hundred records ahead).
	removed := float64(published) - 5*30
	t.Logf("%d frames published, %.0f removed by retention unread or read, %.0f counted lost", published, removed, lost)
	if lost < removed-600 || lost > removed {
		t.Errorf("streamd_recorder_lost_frames_total = %.0f, want at most the %.0f frames retention removed, and most of them", lost, removed)
	}
	var st struct {
		Cameras []struct {
			Camera string
			Lost   *uint64 `json:"recorder_lost_frames"`
		}
	}
	getJSON(t, base+"/api/storage", &st)
	if len(st.Cameras) != 1 || st.Cameras[0].Lost == nil || float64(*st.Cameras[0].Lost) != lost {
		t.Errorf("/api/storage: %+v, want recorder_lost_frames %.0f", st, lost)
	}
}

// recorderMetric reads the sample of metric name for camera from /metrics.
func recorderMetric(t *testing.T, base, name, camera string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v := -1.0
	want := name + `{camera="` + camera + `"}`
	if err := bench.EachSample(resp.Body, func(n string, x float64) {
		if n == want {
			v = x
		}
	}); err != nil {
		t.Fatal(err)
	}
	if v < 0 {
		t.Fatalf("no %s in /metrics", want)
	}
	return v
}
