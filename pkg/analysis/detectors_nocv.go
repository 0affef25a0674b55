//go:build nocv

package analysis

import (
	"github.com/streamd/streamd/pkg/analyzer"
	"github.com/streamd/streamd/pkg/events"
)

// detectors would make the OpenCV detectors; this binary has none.
type detectors struct{ objects []analyzer.ObjectDetector }

func (detectors) camera(string) (analyzer.Camera, bool, error) { return analyzer.Camera{}, false, nil }
func (detectors) reload([]Camera)                              {}
func (detectors) annotate(jpeg []byte, _ events.Event) ([]byte, error) {
	return jpeg, nil
}

// newDetectors refuses: analysis needs OpenCV. Config validation refuses
// such a role first (exit 2); this is the backstop.
func newDetectors(Options) (detectors, error) { return detectors{}, ErrNoOpenCV }
