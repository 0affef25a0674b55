// Package frame defines the unit that flows through streamd: one encoded
// video frame with its metadata, and how that metadata is carried in Kafka
// record headers. It sits at the bottom of the import graph and knows
// nothing of Kafka clients, OpenCV or HTTP.
package frame

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Header names used on Kafka records. Values are ASCII decimal or plain text
// so that any Kafka tool (kcat, kafka-console-consumer) can read them.
const (
	HeaderContentType = "content-type"
	HeaderSeq         = "seq"
	HeaderCapturedAt  = "captured-at" // unix nanoseconds
	HeaderWidth       = "width"
	HeaderHeight      = "height"
	HeaderSignal      = "signal"    // "lost" on generated no-signal frames
	HeaderRendition   = "rendition" // "sub" on a camera's low-resolution substream; absent on the main stream
)

// Content types streamd recognises in record values.
const (
	TypeJPEG = "image/jpeg"
	TypePNG  = "image/png"
)

// UnkeyedCamera is the camera id given to records that carry no key, such as
// those written by the seed tutorials' Python producer.
const UnkeyedCamera = "unkeyed"

// MaxIDLen is the longest camera id accepted anywhere.
const MaxIDLen = 64

// Frame is one encoded image of one camera. A Frame is immutable once
// published: consumers share it between any number of viewers, so nobody may
// modify Data after it has been handed on.
type Frame struct {
	Camera      string    // camera id (the record key)
	Seq         uint64    // producer's sequence number, per camera, from 0
	CapturedAt  time.Time // when the source delivered the image
	ReceivedAt  time.Time // when the consumer read it from Kafka (zero on the producer side)
	Width       int       // pixels, 0 when unknown
	Height      int       // pixels, 0 when unknown
	ContentType string    // TypeJPEG or TypePNG
	Data        []byte    // the encoded image, exactly the record value
	NoSignal    bool      // a generated "no signal" image: the source is lost
	Rendition   string    // "" for the main stream, "sub" for the substream
	Partition   int32     // where the consumer read it (zero on the producer side)
	Offset      int64
}

// Header is one record header, independent of any Kafka client library.
type Header struct {
	Key   string
	Value []byte
}

// Headers returns the record headers that describe f.
func (f *Frame) Headers() []Header {
	h := []Header{
		{HeaderContentType, []byte(f.ContentType)},
		{HeaderSeq, strconv.AppendUint(nil, f.Seq, 10)},
		{HeaderCapturedAt, strconv.AppendInt(nil, f.CapturedAt.UnixNano(), 10)},
		{HeaderWidth, strconv.AppendInt(nil, int64(f.Width), 10)},
		{HeaderHeight, strconv.AppendInt(nil, int64(f.Height), 10)},
	}
	if f.NoSignal {
		h = append(h, Header{HeaderSignal, []byte("lost")})
	}
	if f.Rendition != "" {
		h = append(h, Header{HeaderRendition, []byte(f.Rendition)})
	}
	return h
}

// Errors returned by Decode. They are wrapped with detail; test with errors.Is.
var (
	ErrNotImage  = errors.New("value is not a JPEG or PNG image")
	ErrTruncated = errors.New("image is truncated")
	ErrTooLarge  = errors.New("record larger than the limit")
	ErrBadKey    = errors.New("invalid camera id")
)

// Decode builds a Frame from a record's key, value, headers and timestamp.
// Records from foreign producers are accepted: missing headers are filled in
// (the content type is sniffed from the bytes, the capture time falls back to
// the record timestamp, the sequence to fallbackSeq). A value that is not a
// JPEG or PNG image yields an error wrapping ErrNotImage; a key that is not a
// valid camera id yields one wrapping ErrBadKey. Malformed numeric headers are
// ignored rather than fatal: the image is still good.
func Decode(key, value []byte, headers []Header, recordTime time.Time, fallbackSeq uint64) (*Frame, error) {
	f := &Frame{Camera: string(key), Data: value, CapturedAt: recordTime, Seq: fallbackSeq}
	if len(key) == 0 {
		f.Camera = UnkeyedCamera
	}
	if err := ValidateID(f.Camera); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	sniffed := Sniff(value)
	if sniffed == "" {
		return nil, fmt.Errorf("decode record for camera %q (%d bytes): %w", f.Camera, len(value), ErrNotImage)
	}
	if !Complete(value) {
		return nil, fmt.Errorf("decode record for camera %q (%d bytes of %s): %w", f.Camera, len(value), sniffed, ErrTruncated)
	}
	f.ContentType = sniffed
	for _, h := range headers {
		switch h.Key {
		case HeaderSeq:
			if v, err := strconv.ParseUint(string(h.Value), 10, 64); err == nil {
				f.Seq = v
			}
		case HeaderCapturedAt:
			if v, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil && v > 0 {
				f.CapturedAt = time.Unix(0, v)
			}
		case HeaderWidth:
			if v, err := strconv.Atoi(string(h.Value)); err == nil && v > 0 {
				f.Width = v
			}
		case HeaderHeight:
			if v, err := strconv.Atoi(string(h.Value)); err == nil && v > 0 {
				f.Height = v
			}
		case HeaderSignal:
			f.NoSignal = string(h.Value) == "lost"
		case HeaderRendition:
			if string(h.Value) == "sub" {
				f.Rendition = "sub"
			}
		}
	}
	if f.Width == 0 || f.Height == 0 {
		f.Width, f.Height = Dimensions(value)
	}
	return f, nil
}

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
)

// Sniff returns TypeJPEG or TypePNG from the leading bytes of b, or "" when b
// is neither. It trusts the content, never a header: a truncated JPEG still
// sniffs as JPEG (browsers show what they can of it).
func Sniff(b []byte) string {
	switch {
	case len(b) >= 4 && bytes.HasPrefix(b, jpegMagic):
		return TypeJPEG
	case len(b) > len(pngMagic)+8 && bytes.HasPrefix(b, pngMagic):
		return TypePNG
	}
	return ""
}

// Complete reports whether b, a JPEG or PNG, ends the way a whole image
// does: a JPEG with its end-of-image marker (trailing zero padding allowed),
// a PNG with its IEND chunk. It catches records cut short.
func Complete(b []byte) bool {
	switch Sniff(b) {
	case TypeJPEG:
		end := len(b)
		for end > 2 && b[end-1] == 0 {
			end--
		}
		return end >= 4 && b[end-2] == 0xFF && b[end-1] == 0xD9
	case TypePNG:
		return len(b) >= 12+len(pngMagic) && string(b[len(b)-8:len(b)-4]) == "IEND"
	}
	return false
}

// Dimensions reads width and height from a PNG IHDR chunk or a JPEG SOFn
// marker without decoding the image. It returns zeros when it cannot tell.
func Dimensions(b []byte) (width, height int) {
	switch Sniff(b) {
	case TypePNG:
		// signature(8) length(4) "IHDR"(4) width(4) height(4)
		if len(b) >= 24 && string(b[12:16]) == "IHDR" {
			w := int(b[16])<<24 | int(b[17])<<16 | int(b[18])<<8 | int(b[19])
			h := int(b[20])<<24 | int(b[21])<<16 | int(b[22])<<8 | int(b[23])
			if w > 0 && h > 0 {
				return w, h
			}
		}
	case TypeJPEG:
		i := 2
		for i+4 <= len(b) {
			if b[i] != 0xFF {
				return 0, 0
			}
			marker := b[i+1]
			if marker == 0xFF { // fill byte
				i++
				continue
			}
			if marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) {
				i += 2
				continue
			}
			seg := int(b[i+2])<<8 | int(b[i+3])
			if seg < 2 {
				return 0, 0
			}
			isSOF := marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
			if isSOF {
				if i+9 > len(b) {
					return 0, 0
				}
				h := int(b[i+5])<<8 | int(b[i+6])
				w := int(b[i+7])<<8 | int(b[i+8])
				return w, h
			}
			i += 2 + seg
		}
	}
	return 0, 0
}

// ValidateID reports whether id is acceptable as a camera id: 1 to MaxIDLen
// characters from [A-Za-z0-9_.-], not starting with '.' or '-'. Camera ids
// appear in URLs, Kafka keys, logs and metric labels, so the set is small.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrBadKey)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrBadKey, len(id), MaxIDLen)
	}
	if id[0] == '.' || id[0] == '-' {
		return fmt.Errorf("%w %q: must start with a letter, digit or '_'", ErrBadKey, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%w %q: character %q not allowed (use A-Z a-z 0-9 _ . -)", ErrBadKey, truncate(id), c)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > MaxIDLen {
		return s[:MaxIDLen] + "…"
	}
	return s
}
