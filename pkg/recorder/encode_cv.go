//go:build !nocv

package recorder

import (
	"github.com/streamd/streamd/pkg/record"
	"github.com/streamd/streamd/pkg/video"
)

// newChunkEncoder returns the full tier's encoder: codec (H.264 or MPEG-4
// Part 2) in MP4 at the chunk's own frame rate, H.264 at preset and crf
// (empty and zero: package video's defaults).
func newChunkEncoder(codec, preset string, crf int) (func(record.Chunk) ([]byte, error), error) {
	o := video.Options{Preset: preset, CRF: crf}
	return func(c record.Chunk) ([]byte, error) {
		jpegs := make([][]byte, len(c))
		for i, f := range c {
			jpegs[i] = f.Data
		}
		w, h := c[0].Width, c[0].Height
		if w == 0 || h == 0 {
			w, h = 1280, 720
		}
		return video.Encode(codec, jpegs, chunkFPS(c), w, h, o)
	}, nil
}
