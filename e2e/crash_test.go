//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCrashLosesNothingAcknowledged kills the all-in-one (SIGKILL, as a
// crash or systemd's last resort) while it records an event, with the
// embedded broker on disk, and starts it again on the same data. It comes
// up; every topic reads to its end; every frame the broker acknowledged
// before the kill is in the frames topic, in order, none missing; and
// every recording index entry points at a recording of its camera and tier
// whose size and start it gives, every full-tier chunk has its entry.
//
// It runs with the default (the kernel holds what was written) and with
// embedded.sync_writes (each write on disk before its acknowledgement).
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Parallel() // waits for an event; no timing bound
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync_writes=%t", sync), func(t *testing.T) {
			t.Parallel()
			crashAndRestart(t, sync)
		})
	}
}

func crashAndRestart(t *testing.T, sync bool) {
	dir := t.TempDir()
	embedded := fmt.Sprintf("embedded:\n  data_dir: %s\n  sync_writes: %t\n", dir, sync)
	yaml := strings.Replace(recYAML(recScriptedMotion(t), "", ""), "embedded:\n", embedded, 1)
	a := startStreamd(t, "all-1", yaml)
	a.waitReady(t)
	ev := waitEnded(t, a, recCamera, 60*time.Second)
	waitFullWindow(t, a, ev, 30*time.Second)
	acked, ok := a.metrics(t).get("streamd_kafka_produced_total")
	if !ok || acked < 30 {
		t.Fatalf("streamd_kafka_produced_total = %v (%v) before the kill", acked, ok)
	}
	a.kill()
	killed := time.Now()

	b := startStreamd(t, "all-2", yaml)
	b.waitReady(t)
	t.Logf("%.0f frames acknowledged before the kill; up again in %s", acked, time.Since(killed).Round(time.Millisecond))

	// The frames of the first run come first in the one partition: seq 0,
	// 1, 2, ... up to where the second run starts again at 0.
	frames := readTopic(t, "streamd.frames", false, b.broker)
	var first int64
	for _, r := range frames {
		if r.Key != recCamera {
			continue
		}
		s := r.seq()
		if s == 0 && first > 0 {
			break // the second run
		}
		if s != first {
			t.Fatalf("frame at offset %d has seq %d, want %d: frames of the first run missing or repeated", r.Offset, s, first)
		}
		first++
	}
	if float64(first) < acked {
		t.Fatalf("the frames topic holds %d frames of the first run, the broker had acknowledged %.0f", first, acked)
	}

	// Every topic reads to its end.
	for _, topic := range []string{"streamd.events", "streamd.snapshots", "streamd.rec.reduced"} {
		if n := len(readTopic(t, topic, false, b.broker)); n == 0 {
			t.Errorf("%s is empty after the restart", topic)
		}
	}
	full := readTopic(t, "streamd.rec.full", false, b.broker)
	reduced := readTopic(t, "streamd.rec.reduced", false, b.broker)
	index := readTopic(t, "streamd.rec.index", true, b.broker)
	at := map[string]record{}
	for _, r := range full {
		at[fmt.Sprintf("full/%d/%d", r.Partition, r.Offset)] = r
	}
	for _, r := range reduced {
		at[fmt.Sprintf("reduced/%d/%d", r.Partition, r.Offset)] = r
	}
	indexed := map[string]bool{}
	for _, r := range index {
		if r.Headers["kind"] != "" {
			continue // a recorder's progress (record.HeaderKind), not an index entry
		}
		var e struct {
			Camera    string    `json:"camera"`
			Tier      string    `json:"tier"`
			Start     time.Time `json:"start"`
			Frames    int       `json:"frames"`
			Bytes     int64     `json:"bytes"`
			Partition int32     `json:"partition"`
			Offset    int64     `json:"offset"`
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("index record %d: %v", r.Offset, err)
		}
		key := fmt.Sprintf("%s/%d/%d", e.Tier, e.Partition, e.Offset)
		rec, ok := at[key]
		if !ok {
			t.Errorf("index entry %s (%d frames from %s) points at no record", key, e.Frames, e.Start.Format(time.RFC3339Nano))
			continue
		}
		if rec.Key != e.Camera {
			t.Errorf("index entry %s is of camera %q, the record of %q", key, e.Camera, rec.Key)
		}
		if e.Tier == "full" {
			indexed[key] = true
			if int64(rec.Size) != e.Bytes {
				t.Errorf("index entry %s says %d bytes, the chunk has %d", key, e.Bytes, rec.Size)
			}
			if ns, _ := strconv.ParseInt(rec.Headers["span-start"], 10, 64); ns != e.Start.UnixNano() {
				t.Errorf("index entry %s starts %s, the chunk %s", key, e.Start.Format(time.RFC3339Nano), rec.Headers["span-start"])
			}
		}
	}
	for _, r := range full {
		if key := fmt.Sprintf("full/%d/%d", r.Partition, r.Offset); !indexed[key] {
			t.Errorf("full-tier chunk %s (span %s..%s) has no index entry: playback cannot find it", key, r.Headers["span-start"], r.Headers["span-end"])
		}
	}
	if len(full) == 0 {
		t.Error("no full-tier chunk after the event")
	}
}
