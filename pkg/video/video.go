// Package video converts between the JPEG frames streamd moves and H.264
// video in MP4 files, with OpenCV's FFmpeg backend. The recorder uses it to
// keep full-rate event footage ten times smaller than JPEG, the web node to
// play that footage back frame by frame and to export MP4 clips.
//
// Choices, from measurements on Debian's OpenCV 4.6 (docs/recording.md):
//
//   - Two codecs: H.264 ("avc1"), which every browser's <video> plays: the
//     exports and, by default, recorded chunks; MPEG-4 Part 2 ("mp4v"),
//     about half the encode time for 2-10 times the bytes, a choice for
//     recorded chunks, which only streamd decodes.
//     VP8/VP9 WebM costs two to three times more CPU than H.264.
//   - OpenCV writes to a file, not to memory, and reads from a file or URL.
//     Each conversion goes through a temporary file that is removed when the
//     conversion ends; chunks are a few seconds long, so the files are small.
//   - The MP4 has its index (moov box) at the end: a complete file plays in
//     <video src>, but it cannot be streamed while it is written, so exports
//     are sent once finished.
//   - H.264 needs even dimensions (4:2:0 chroma); odd-sized frames are
//     scaled down by one pixel.
//
// Opening a capture or writer goes through Open, the process-wide lock that
// package capture uses too: OpenCV's backend registry is not safe for
// concurrent opens. Encoding and decoding themselves run concurrently.
package video

import (
	"errors"
	"fmt"
	"image"
	"os"
	"sync"

	"gocv.io/x/gocv"
)

// ContentType is the MIME type of what Writer produces.
const ContentType = "video/mp4"

// Codecs a Writer encodes, by the names record headers and the
// configuration use.
const (
	// H264 is H.264 in MP4 (fourcc avc1): what browsers play, so what
	// exports are; 8-19 ms a frame at 720p here.
	H264 = "h264/mp4"
	// MPEG4 is MPEG-4 Part 2 in MP4 (fourcc mp4v): browsers do not play
	// it, but it encodes in about half H.264's time for 2-10 times the
	// bytes: a choice for recorders short of CPU, since recorded chunks are
	// only ever decoded by streamd (replay, exports).
	MPEG4 = "mpeg4/mp4"
)

// fourccs maps codecs to OpenCV fourcc codes.
var fourccs = map[string]string{H264: "avc1", MPEG4: "mp4v"}

// openMu serializes opening OpenCV video sources and sinks process-wide;
// see Open.
var openMu sync.Mutex

// Open runs fn, which opens an OpenCV VideoCapture or VideoWriter, under the
// process-wide lock every opener must take: two concurrent opens crashed
// inside OpenCV (SIGSEGV in its backend registry). Opening is rare next to
// reading or writing frames, which are not serialized.
func Open(fn func() error) error {
	openMu.Lock()
	defer openMu.Unlock()
	return fn()
}

// ErrNoFrames is returned when there is nothing to encode or decode.
var ErrNoFrames = errors.New("no frames")

// Writer encodes JPEG frames into an H.264 MP4 file at a constant rate. It
// is not safe for concurrent use.
type Writer struct {
	f      *os.File
	vw     *gocv.VideoWriter
	w, h   int // output size (even)
	frames int
	img    gocv.Mat // the last decoded frame, for repeats
	sized  gocv.Mat
	done   bool
}

// NewWriter opens an MP4 file in dir (the system's temporary directory if
// empty) for frames of width x height at fps, in codec (H264 or MPEG4).
func NewWriter(dir, codec string, fps float64, width, height int) (*Writer, error) {
	fourcc, ok := fourccs[codec]
	if !ok {
		return nil, fmt.Errorf("open video writer: codec %q is not %q or %q", codec, H264, MPEG4)
	}
	if width < 2 || height < 2 || fps <= 0 {
		return nil, fmt.Errorf("open video writer: bad size %dx%d or rate %g", width, height, fps)
	}
	f, err := os.CreateTemp(dir, "streamd-*.mp4")
	if err != nil {
		return nil, fmt.Errorf("open video writer: %w", err)
	}
	f.Close()
	w := &Writer{f: f, w: width &^ 1, h: height &^ 1, img: gocv.NewMat(), sized: gocv.NewMat()}
	err = Open(func() error {
		var err error
		w.vw, err = gocv.VideoWriterFile(f.Name(), fourcc, fps, w.w, w.h, true)
		return err
	})
	if err == nil && !w.vw.IsOpened() {
		err = fmt.Errorf("FFmpeg backend refused the %s writer", fourcc)
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("open video writer: %w", err)
	}
	return w, nil
}

// Size returns the output size.
func (w *Writer) Size() (width, height int) { return w.w, w.h }

// Frames returns how many frames were written.
func (w *Writer) Frames() int { return w.frames }

// WriteJPEG decodes img (JPEG or PNG) and writes it repeat times (repeats
// hold a frame on screen when the source rate is lower than the file's).
func (w *Writer) WriteJPEG(img []byte, repeat int) error {
	m, err := gocv.IMDecode(img, gocv.IMReadColor)
	if err != nil || m.Empty() {
		m.Close()
		return fmt.Errorf("video write: decode frame of %d bytes: not an image", len(img))
	}
	w.img.Close()
	w.img = m
	return w.Repeat(repeat)
}

// Repeat writes the last decoded frame n more times.
func (w *Writer) Repeat(n int) error {
	if w.img.Empty() {
		return fmt.Errorf("video write: %w", ErrNoFrames)
	}
	out := w.img
	if w.img.Cols() != w.w || w.img.Rows() != w.h {
		gocv.Resize(w.img, &w.sized, image.Pt(w.w, w.h), 0, 0, gocv.InterpolationArea)
		out = w.sized
	}
	for range n {
		if err := w.vw.Write(out); err != nil {
			return fmt.Errorf("video write: %w", err)
		}
		w.frames++
	}
	return nil
}

// Finish closes the file and returns its contents. The Writer is done.
func (w *Writer) Finish() ([]byte, error) {
	defer w.Abort()
	if w.frames == 0 {
		return nil, fmt.Errorf("video finish: %w", ErrNoFrames)
	}
	if err := w.vw.Close(); err != nil {
		return nil, fmt.Errorf("video finish: %w", err)
	}
	w.vw = nil
	b, err := os.ReadFile(w.f.Name())
	if err != nil {
		return nil, fmt.Errorf("video finish: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("video finish: the writer wrote nothing")
	}
	return b, nil
}

// Abort discards the file. It is idempotent, and safe after Finish.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.vw != nil {
		w.vw.Close()
	}
	w.img.Close()
	w.sized.Close()
	os.Remove(w.f.Name())
}

// Encode encodes JPEG frames, one each, into an MP4 of codec at fps,
// width x height.
func Encode(dir, codec string, jpegs [][]byte, fps float64, width, height int) ([]byte, error) {
	if len(jpegs) == 0 {
		return nil, fmt.Errorf("video encode: %w", ErrNoFrames)
	}
	w, err := NewWriter(dir, codec, fps, width, height)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	for _, j := range jpegs {
		if err := w.WriteJPEG(j, 1); err != nil {
			return nil, err
		}
	}
	return w.Finish()
}

// Decode reads an MP4 (any format OpenCV's FFmpeg backend reads) and calls
// fn with each frame as a JPEG of the given quality (1-100), in order. It
// stops at fn's first error and returns it.
func Decode(dir string, mp4 []byte, quality int, fn func(i int, jpeg []byte) error) error {
	f, err := os.CreateTemp(dir, "streamd-*.mp4")
	if err != nil {
		return fmt.Errorf("video decode: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(mp4)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("video decode: %w", err)
	}
	var vc *gocv.VideoCapture
	err = Open(func() error {
		var err error
		vc, err = gocv.VideoCaptureFileWithAPI(f.Name(), gocv.VideoCaptureFFmpeg)
		return err
	})
	if err != nil {
		return fmt.Errorf("video decode: open: %w", err)
	}
	defer vc.Close()
	if !vc.IsOpened() {
		return errors.New("video decode: not a video OpenCV can read")
	}
	img := gocv.NewMat()
	defer img.Close()
	params := []int{gocv.IMWriteJpegQuality, quality}
	n := 0
	for vc.Read(&img) && !img.Empty() {
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, params)
		if err != nil {
			return fmt.Errorf("video decode: encode frame %d: %w", n, err)
		}
		b := append([]byte(nil), buf.GetBytes()...)
		buf.Close()
		if err := fn(n, b); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("video decode: %w", ErrNoFrames)
	}
	return nil
}
