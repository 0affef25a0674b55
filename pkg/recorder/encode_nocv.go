//go:build nocv

package recorder

import (
	"fmt"
	"github.com/streamd/streamd/pkg/frame"

	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/record"
)

// newChunkEncoder refuses: recording encodes H.264 with OpenCV. Config
// validation refuses such a role first (exit 2); this is the backstop.
func newChunkEncoder(cfg *config.Config) (func(record.Chunk) ([]byte, error), error) {
	return nil, fmt.Errorf("role %q needs OpenCV to record, and this binary was built without OpenCV (-tags nocv)", cfg.Role)
}

// canDecodeChunks says whether this binary plays the full tier: without
// OpenCV, a web node plays the reduced tier alone.
const canDecodeChunks = false

func decodeChunk(string, []byte, record.ChunkInfo) ([]*frame.Frame, error) {
	return nil, fmt.Errorf("playing the full tier needs OpenCV")
}
