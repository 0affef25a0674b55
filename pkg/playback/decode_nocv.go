//go:build nocv

package playback

import (
	"errors"

	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/record"
)

// canDecodeChunks says whether this binary plays the full tier: without
// OpenCV, a web node plays the reduced tier alone.
const canDecodeChunks = false

func decodeChunk(string, []byte, record.ChunkInfo) ([]*frame.Frame, error) {
	return nil, errors.New("playing the full tier needs OpenCV")
}
