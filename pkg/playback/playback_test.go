package playback

import (
	"testing"
	"time"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/kafka"
)

func TestIsCamera(t *testing.T) {
	for _, tc := range []struct {
		key    string
		camera string
		want   bool
	}{
		{"a", "a", true}, {"a", "b", false}, {"", frame.UnkeyedCamera, true}, {"", "a", false}, {"ab", "a", false},
	} {
		if got := isCamera([]byte(tc.key), tc.camera); got != tc.want {
			t.Errorf("isCamera(%q, %q) = %v, want %v", tc.key, tc.camera, got, tc.want)
		}
	}
}

func TestCapturedAtFallsBackToTimestamp(t *testing.T) {
	ts := time.Unix(1_700_000_000, 0)
	if got := capturedAt(kafka.Record{Key: []byte("a"), Timestamp: ts}); !got.Equal(ts) {
		t.Errorf("capturedAt of a record that is not a frame = %v, want its timestamp %v", got, ts)
	}
}
