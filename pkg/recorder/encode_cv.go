//go:build !nocv

package recorder

import (
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/frame"
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/video"
)

// newChunkEncoder returns the full tier's encoder: recording.codec (H.264
// or MPEG-4 Part 2) in MP4 at the chunk's own frame rate.
func newChunkEncoder(cfg *config.Config) (func(record.Chunk) ([]byte, error), error) {
	codec := cfg.Record.Codec
	return func(c record.Chunk) ([]byte, error) {
		jpegs := make([][]byte, len(c))
		for i, f := range c {
			jpegs[i] = f.Data
		}
		w, h := c[0].Width, c[0].Height
		if w == 0 || h == 0 {
			w, h = 1280, 720
		}
		return video.Encode("", codec, jpegs, chunkFPS(c), w, h)
	}, nil
}

// chunkFPS is the frame rate of a chunk from its capture times (frames
// are written one each; the real times travel in its headers).
func chunkFPS(c record.Chunk) float64 {
	if len(c) < 2 {
		return 1
	}
	span := c.End().Sub(c.Start()).Seconds()
	if span <= 0 {
		return 30
	}
	return min(max(float64(len(c)-1)/span, 1), 120)
}

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
