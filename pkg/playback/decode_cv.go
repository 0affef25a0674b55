//go:build !nocv

package playback

import (
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/video"
)

// canDecodeChunks says whether this binary plays the full tier.
const canDecodeChunks = true

// decodeChunk turns a full-tier record back into frames, JPEG at the
// quality of the replay's re-encoding.
func decodeChunk(camera string, data []byte, ci record.ChunkInfo) ([]*frame.Frame, error) {
	out := make([]*frame.Frame, 0, len(ci.Times))
	err := video.Decode("", data, replayQuality, func(i int, jpeg []byte) error {
		if i >= len(ci.Times) {
			return nil // more frames than the headers say: ignore the rest
		}
		out = append(out, &frame.Frame{Camera: camera, Seq: ci.Seqs[i], CapturedAt: ci.Times[i], Width: ci.Width, Height: ci.Height,
			ContentType: frame.TypeJPEG, Data: jpeg})
		return nil
	})
	return out, err
}

// replayQuality is the JPEG quality full-tier frames are played at.
const replayQuality = 85
