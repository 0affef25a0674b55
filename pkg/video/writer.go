package video

/*
#cgo pkg-config: libavcodec libavformat libavutil libswscale
#include <stdlib.h>
#include "avenc.h"
*/
import "C"

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// DefaultPreset is x264's preset when Options.Preset is empty: the fastest.
// At 720p it costs a fraction of a core per camera at 30 fps, for files
// about twice the size of the medium preset's (still several times smaller
// than the JPEG frames); docs/performance.md has the measured table.
const DefaultPreset = "ultrafast"

// Presets returns x264's presets, fastest first: the values Options.Preset
// takes.
func Presets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
}

// Options tune a Writer. The zero value is the default.
type Options struct {
	// Preset is the x264 preset for H.264 (one of Presets); empty is
	// DefaultPreset. MPEG-4 ignores it.
	Preset string
	// CRF is x264's constant rate factor for H.264, 1-51: lower is better
	// and bigger; zero is x264's default, 23. Each step of 6 roughly halves
	// or doubles the bytes; fewer bytes cost a little less CPU too.
	CRF int
	// Threads is the encoder's thread count; zero is one. A recorder runs
	// one encoder per camera and worker side by side, so one thread each
	// uses the cores with the least overhead; an export, alone, may use
	// more.
	Threads int
}

// Writer encodes JPEG frames into an MP4 at a constant rate, in memory. It
// is not safe for concurrent use. Its C memory is released by Finish or
// Abort: call one of them.
type Writer struct {
	e      *C.sd_enc
	w, h   int // output size (even)
	frames int
	err    [256]C.char
}

// NewWriter opens an encoder for frames of width x height at fps, in codec
// (H264 or MPEG4).
func NewWriter(codec string, fps float64, width, height int, o Options) (*Writer, error) {
	var id C.int
	switch codec {
	case H264:
		id = 0
	case MPEG4:
		id = 1
	default:
		return nil, fmt.Errorf("open video writer: codec %q is not %q or %q", codec, H264, MPEG4)
	}
	if width < 2 || height < 2 || !(fps > 0) || fps > 1000 {
		return nil, fmt.Errorf("open video writer: bad size %dx%d or rate %g", width, height, fps)
	}
	preset := o.Preset
	if preset == "" {
		preset = DefaultPreset
	}
	if !validPreset(preset) {
		return nil, fmt.Errorf("open video writer: preset %q is not one of %v", preset, Presets())
	}
	if o.CRF < 0 || o.CRF > 51 {
		return nil, fmt.Errorf("open video writer: crf %d is not 1-51", o.CRF)
	}
	threads := o.Threads
	if threads <= 0 {
		threads = 1
	}
	num, den := rational(fps)
	w := &Writer{w: width &^ 1, h: height &^ 1}
	cp := C.CString(preset)
	defer C.free(unsafe.Pointer(cp))
	w.e = C.sd_enc_open(id, C.int(w.w), C.int(w.h), C.int(num), C.int(den), cp, C.int(o.CRF), C.int(threads), &w.err[0], C.size_t(len(w.err)))
	if w.e == nil {
		return nil, fmt.Errorf("open video writer: %s", w.message())
	}
	return w, nil
}

func validPreset(p string) bool { return slices.Contains(Presets(), p) }

// rational returns fps as a fraction with denominator 1000 at most,
// reduced: 30 is 30/1, 29.97 is 2997/100.
func rational(fps float64) (num, den int) {
	num, den = int(math.Round(fps*1000)), 1000
	a, b := num, den
	for b != 0 {
		a, b = b, a%b
	}
	return num / a, den / a
}

func (w *Writer) message() string { return C.GoString(&w.err[0]) }

// Size returns the output size.
func (w *Writer) Size() (width, height int) { return w.w, w.h }

// Frames returns how many frames were written.
func (w *Writer) Frames() int { return w.frames }

// WriteJPEG decodes img (a JPEG) and writes it repeat times (repeats hold a
// frame on screen when the source rate is lower than the file's). A frame
// that does not decode is an error, and the previous frame stays current.
func (w *Writer) WriteJPEG(img []byte, repeat int) error {
	if w.e == nil {
		return fmt.Errorf("video write: writer is finished")
	}
	if len(img) == 0 {
		return fmt.Errorf("video write: decode frame of 0 bytes: not a JPEG")
	}
	// The decoder reads up to 64 bytes past the end of its input (FFmpeg's
	// input padding): give it a padded copy in C memory.
	const pad = 64
	buf := C.malloc(C.size_t(len(img) + pad))
	defer C.free(buf)
	b := unsafe.Slice((*byte)(buf), len(img)+pad)
	copy(b, img)
	clear(b[len(img):])
	if C.sd_enc_jpeg(w.e, (*C.uint8_t)(buf), C.int(len(img)), &w.err[0], C.size_t(len(w.err))) < 0 {
		return fmt.Errorf("video write: frame of %d bytes: %s", len(img), w.message())
	}
	return w.Repeat(repeat)
}

// Repeat writes the last decoded frame n more times.
func (w *Writer) Repeat(n int) error {
	if w.e == nil {
		return fmt.Errorf("video write: writer is finished")
	}
	if n <= 0 {
		return nil
	}
	if C.sd_enc_repeat(w.e, C.int(n), &w.err[0], C.size_t(len(w.err))) < 0 {
		if w.frames == 0 && w.message() == "no frame" {
			return fmt.Errorf("video write: %w", ErrNoFrames)
		}
		return fmt.Errorf("video write: %s", w.message())
	}
	w.frames += n
	return nil
}

// Finish ends the file and returns its contents. The Writer is done.
func (w *Writer) Finish() ([]byte, error) {
	defer w.Abort()
	if w.e == nil {
		return nil, fmt.Errorf("video finish: writer is finished")
	}
	if w.frames == 0 {
		return nil, fmt.Errorf("video finish: %w", ErrNoFrames)
	}
	var out *C.uint8_t
	var n C.size_t
	if C.sd_enc_finish(w.e, &out, &n, &w.err[0], C.size_t(len(w.err))) < 0 {
		return nil, fmt.Errorf("video finish: %s", w.message())
	}
	if n == 0 {
		return nil, fmt.Errorf("video finish: the writer wrote nothing")
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// Abort discards the file and releases the encoder. It is idempotent, and
// safe after Finish.
func (w *Writer) Abort() {
	if w.e != nil {
		C.sd_enc_free(w.e)
		w.e = nil
	}
}

// Encode encodes JPEG frames, one each, into an MP4 of codec at fps,
// width x height.
func Encode(codec string, jpegs [][]byte, fps float64, width, height int, o Options) ([]byte, error) {
	if len(jpegs) == 0 {
		return nil, fmt.Errorf("video encode: %w", ErrNoFrames)
	}
	w, err := NewWriter(codec, fps, width, height, o)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	for i, j := range jpegs {
		if err := w.WriteJPEG(j, 1); err != nil {
			return nil, fmt.Errorf("video encode: frame %d: %w", i, err)
		}
	}
	return w.Finish()
}
