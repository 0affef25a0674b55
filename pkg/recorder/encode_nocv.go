//go:build nocv

package recorder

import (
	"github.com/streamd/streamd/pkg/record"
)

// newChunkEncoder refuses: recording encodes H.264 with OpenCV. Config
// validation refuses such a role first (exit 2); this is the backstop.
func newChunkEncoder(string, string, int) (func(record.Chunk) ([]byte, error), error) {
	return nil, ErrNoOpenCV
}
