// Package video converts between the JPEG frames streamd moves and H.264
// video in MP4 files. The recorder uses it to keep full-rate event footage
// ten times smaller than JPEG, the web node to play that footage back frame
// by frame and to export MP4 clips.
//
// Choices, from measurements on this project's 2-core reference box
// (docs/performance.md):
//
//   - Writing goes straight to FFmpeg's libraries (Writer, avenc.c), not
//     through OpenCV's VideoWriter: Debian's OpenCV 4.6 passes no encoder
//     options, so x264 ran at its default preset (medium) on 2 threads, and
//     every JPEG was decoded to BGR and converted back to YUV. Here the JPEG
//     is decoded to its own YUV 4:2:0 planes and handed to x264 as they are
//     (flagged full range), at a fast preset on one thread: a recorder
//     encodes many cameras side by side, so threads inside one encoder buy
//     nothing but contention. The cost per 720p frame fell from 42 ms of CPU
//     to the figure in docs/performance.md.
//   - Two codecs: H.264, which every browser's <video> plays: the exports
//     and, by default, recorded chunks; MPEG-4 Part 2, kept for recorders
//     configured with it (recorded chunks are only decoded by streamd).
//   - The MP4 is written in memory, its index (moov box) at the end: a
//     complete file plays in <video src>, but it cannot be streamed while it
//     is written, so exports are sent once finished.
//   - H.264 needs even dimensions (4:2:0 chroma); odd-sized frames are
//     scaled down by one pixel. Frames of another size or chroma sampling
//     than the writer's are converted (libswscale).
//   - Reading (Decode) stays with OpenCV's FFmpeg backend: it runs on demand
//     (replay), not for every frame of every camera.
//
// Opening a capture goes through Open, the process-wide lock that package
// capture uses too: OpenCV's backend registry is not safe for concurrent
// opens. Encoding and decoding themselves run concurrently.
package video

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"gocv.io/x/gocv"
)

// ContentType is the MIME type of what Writer produces.
const ContentType = "video/mp4"

// Codecs a Writer encodes, by the names record headers and the
// configuration use.
const (
	// H264 is H.264 in MP4 (avc1, libx264): what browsers play, so what
	// exports are.
	H264 = "h264/mp4"
	// MPEG4 is MPEG-4 Part 2 in MP4 (mp4v): browsers do not play it, and
	// it writes 2-10 times H.264's bytes; it costs less CPU than x264's
	// slower presets, more than ultrafast. Recorded chunks are only ever
	// decoded by streamd (replay, exports), so either codec works there.
	MPEG4 = "mpeg4/mp4"
)

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
