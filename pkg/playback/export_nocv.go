//go:build nocv

package playback

import (
	"context"
	"time"

	"github.com/streamd/streamd/pkg/web"
)

// Export needs OpenCV to encode H.264.
func (r *Replays) Export(context.Context, string, time.Time, time.Time) ([]byte, error) {
	return nil, web.ErrExportUnsupported
}
