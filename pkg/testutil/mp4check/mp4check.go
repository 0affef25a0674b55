// Package mp4check reads what tests check of an MP4 file: its top-level
// boxes, its movie header's (mvhd) duration and whether its track is H.264.
// It is for tests of the recorder's exports (pkg/app and the e2e module),
// so that both read MP4 files the same way. It parses only the box
// structure; it decodes no media and may not import streamd's packages.
package mp4check

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// File is what Parse reads of an MP4 file.
type File struct {
	// Boxes are the types of the top-level boxes, in file order.
	Boxes []string
	// Duration is the movie header's duration (mvhd: duration/timescale).
	Duration time.Duration
	// H264 reports that the movie box holds an avc1 sample entry with its
	// avcC configuration.
	H264 bool
}

// Parse reads b as a whole MP4 file: boxes that tile it exactly, ftyp
// first, a moov and an mdat, and a movie header with a positive duration.
func Parse(b []byte) (File, error) {
	var f File
	var moov []byte
	err := eachBox(b, func(typ string, body []byte) error {
		f.Boxes = append(f.Boxes, typ)
		if typ == "moov" && moov == nil {
			moov = body
		}
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("mp4 parse: top-level boxes %v: %w", f.Boxes, err)
	}
	switch {
	case len(f.Boxes) == 0 || f.Boxes[0] != "ftyp":
		return f, fmt.Errorf("mp4 parse: does not start with an ftyp box: %v", f.Boxes)
	case !slices.Contains(f.Boxes, "moov") || !slices.Contains(f.Boxes, "mdat"):
		return f, fmt.Errorf("mp4 parse: boxes %v, want moov and mdat", f.Boxes)
	}
	f.H264 = bytes.Contains(moov, []byte("avc1")) && bytes.Contains(moov, []byte("avcC"))
	if f.Duration, err = movieDuration(moov); err != nil {
		return f, fmt.Errorf("mp4 parse: %w", err)
	}
	if f.Duration <= 0 {
		return f, errors.New("mp4 parse: no movie duration")
	}
	return f, nil
}

// Duration returns the movie header's duration of the MP4 file b: the mvhd
// box of its first moov box. The top-level boxes must be well formed up to
// the moov box.
func Duration(b []byte) (time.Duration, error) {
	var moov []byte
	errFound := errors.New("found")
	err := eachBox(b, func(typ string, body []byte) error {
		if typ == "moov" {
			moov = body
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, fmt.Errorf("mp4 duration: %w", err)
	}
	if moov == nil {
		return 0, errors.New("mp4 duration: no moov box")
	}
	d, err := movieDuration(moov)
	if err != nil {
		return 0, fmt.Errorf("mp4 duration: %w", err)
	}
	return d, nil
}

// movieDuration reads the mvhd box among the children of a moov box.
func movieDuration(moov []byte) (time.Duration, error) {
	var d time.Duration
	found := false
	err := eachBox(moov, func(typ string, box []byte) error {
		if typ != "mvhd" || found {
			return nil
		}
		found = true
		var scale uint32
		var dur uint64
		switch {
		case len(box) >= 32 && box[0] == 1:
			scale, dur = binary.BigEndian.Uint32(box[20:]), binary.BigEndian.Uint64(box[24:])
		case len(box) >= 20 && box[0] == 0:
			scale, dur = binary.BigEndian.Uint32(box[12:]), uint64(binary.BigEndian.Uint32(box[16:]))
		default:
			return fmt.Errorf("mvhd of %d bytes, version %d", len(box), box[0])
		}
		if scale == 0 {
			return errors.New("mvhd with time scale 0")
		}
		d = time.Duration(float64(dur) / float64(scale) * float64(time.Second))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("moov: %w", err)
	}
	if !found {
		return 0, errors.New("no movie header (mvhd) in moov")
	}
	return d, nil
}

// eachBox calls fn with the type and body of each box that b is made of,
// in order, and fails on a box that does not fit or on bytes left over.
// 64-bit sizes (size 1) and to-the-end sizes (size 0) are not used by the
// files under test and count as malformed.
func eachBox(b []byte, fn func(typ string, body []byte) error) error {
	for i := 0; i < len(b); {
		if i+8 > len(b) {
			return fmt.Errorf("%d bytes left at %d", len(b)-i, i)
		}
		size := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if size < 8 || size > len(b)-i {
			return fmt.Errorf("box %q of %d bytes at %d of %d", typ, size, i, len(b))
		}
		if err := fn(typ, b[i+8:i+size]); err != nil {
			return err
		}
		i += size
	}
	return nil
}
