// Package mjpeg writes and reads multipart/x-mixed-replace streams of images
// (Motion JPEG over HTTP). The writer follows what browsers need: every part
// carries Content-Type and Content-Length, X-Timestamp (capture time, unix
// seconds with microseconds) and X-Sequence, and the next boundary is written
// straight after each image so that Chrome paints the image at once instead of
// one frame late.
package mjpeg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Boundary is the multipart boundary streamd uses.
const Boundary = "streamdframe"

// ContentType is the Content-Type of a stream written by Writer.
const ContentType = "multipart/x-mixed-replace; boundary=" + Boundary

// Part is one image of a stream.
type Part struct {
	ContentType string
	Timestamp   time.Time // capture time; zero writes no X-Timestamp
	Seq         uint64
	Data        []byte
	// Camera is the X-Camera header of multiplexed streams (several
	// cameras in one stream); empty in a single camera's stream.
	Camera string
}

// Writer writes parts to an underlying writer. It reuses one header buffer,
// so writing a part allocates nothing. A Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	buf     []byte
	started bool
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 256)}
}

var delimiter = []byte("\r\n--" + Boundary + "\r\n")

// WritePart writes p: its headers, its data and then the boundary that ends
// it. The first call writes the opening boundary first.
func (w *Writer) WritePart(p Part) error {
	if !w.started {
		if _, err := w.w.Write(Opening); err != nil {
			return fmt.Errorf("write opening boundary: %w", err)
		}
		w.started = true
	}
	return w.WriteBody(p)
}

// WriteBody writes p without the opening boundary, for a stream whose
// opening (Opening) was already written.
func (w *Writer) WriteBody(p Part) error {
	w.started = true
	b := AppendHeader(w.buf[:0], p)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write part header: %w", err)
	}
	if _, err := w.w.Write(p.Data); err != nil {
		return fmt.Errorf("write part data: %w", err)
	}
	if _, err := w.w.Write(delimiter); err != nil {
		return fmt.Errorf("write part boundary: %w", err)
	}
	return nil
}

// Opening is what a stream starts with, before its first part (when the
// parts are written with AppendPart).
var Opening = delimiter[2:]

// AppendPart appends the whole wire form of p to dst: its headers, its data
// and the boundary that ends it, as WritePart writes them. Every viewer of a
// frame can share one such slice and send it with a single write.
func AppendPart(dst []byte, p Part) []byte {
	dst = AppendHeader(dst, p)
	dst = append(dst, p.Data...)
	return append(dst, delimiter...)
}

// AppendHeader appends the MIME header block of p (ending with the blank
// line) to b.
func AppendHeader(b []byte, p Part) []byte {
	if p.Camera != "" {
		b = append(b, "X-Camera: "...)
		b = append(b, p.Camera...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Type: "...)
	b = append(b, p.ContentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(p.Data)), 10)
	if !p.Timestamp.IsZero() {
		b = append(b, "\r\nX-Timestamp: "...)
		b = AppendTimestamp(b, p.Timestamp)
	}
	b = append(b, "\r\nX-Sequence: "...)
	b = strconv.AppendUint(b, p.Seq, 10)
	return append(b, "\r\n\r\n"...)
}

// AppendTimestamp appends t as unix seconds with six decimals.
func AppendTimestamp(b []byte, t time.Time) []byte {
	us := t.UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, '.')
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, digits[:]...)
}

// ParseTimestamp parses the X-Timestamp format written by AppendTimestamp.
func ParseTimestamp(s []byte) (time.Time, error) {
	dot := bytes.IndexByte(s, '.')
	if dot < 0 {
		sec, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse timestamp %q: %w", s, err)
		}
		return time.Unix(sec, 0), nil
	}
	sec, err := strconv.ParseInt(string(s[:dot]), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse timestamp %q: %w", s, err)
	}
	fr := s[dot+1:]
	if len(fr) == 0 || len(fr) > 9 {
		return time.Time{}, fmt.Errorf("parse timestamp %q: bad fraction", s)
	}
	ns := int64(0)
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(fr) {
			c := fr[i]
			if c < '0' || c > '9' {
				return time.Time{}, fmt.Errorf("parse timestamp %q: bad fraction", s)
			}
			ns += int64(c - '0')
		}
	}
	return time.Unix(sec, ns), nil
}

// MaxPartSize bounds the Content-Length a Reader accepts.
const MaxPartSize = 64 << 20

// ErrMalformed is wrapped by Reader errors caused by a stream that does not
// follow the format.
var ErrMalformed = errors.New("malformed multipart stream")

// Reader reads the parts of a stream written by Writer (or any
// multipart/x-mixed-replace stream whose parts carry Content-Length). It
// reuses its buffers: the Part returned by Next is valid until the next call.
type Reader struct {
	// SkipData discards each part's image bytes instead of reading them
	// into Part.Data (which is then nil): for clients that need only the
	// headers, such as benchmarks.
	SkipData bool

	r        *bufio.Reader
	boundary []byte
	data     []byte
	started  bool
}

// NewReader returns a Reader of the parts in r, delimited by boundary.
func NewReader(r io.Reader, boundary string) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 32<<10), boundary: []byte("--" + boundary)}
}

// Next returns the next part. It returns io.EOF at a clean end of stream.
func (r *Reader) Next() (Part, error) {
	var p Part
	if !r.started {
		// Skip anything (e.g. a preamble) up to the first boundary line.
		for {
			line, err := r.line()
			if err != nil {
				return p, err
			}
			if bytes.Equal(line, r.boundary) {
				break
			}
		}
		r.started = true
	}
	length := -1
	for first := true; ; first = false {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && first {
				return p, io.EOF // clean end after a boundary
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return p, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return p, fmt.Errorf("%w: header line %q", ErrMalformed, truncate(line))
		}
		key, val := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(key, "Content-Type"):
			if p.ContentType != string(val) {
				p.ContentType = string(val)
			}
		case asciiEqualFold(key, "Content-Length"):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 || n > MaxPartSize {
				return p, fmt.Errorf("%w: Content-Length %q", ErrMalformed, truncate(val))
			}
			length = n
		case asciiEqualFold(key, "X-Timestamp"):
			t, err := ParseTimestamp(val)
			if err != nil {
				return p, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			p.Timestamp = t
		case asciiEqualFold(key, "X-Camera"):
			if p.Camera != string(val) {
				p.Camera = string(val)
			}
		case asciiEqualFold(key, "X-Sequence"):
			n, err := strconv.ParseUint(string(val), 10, 64)
			if err != nil {
				return p, fmt.Errorf("%w: X-Sequence %q", ErrMalformed, truncate(val))
			}
			p.Seq = n
		}
	}
	if length < 0 {
		return p, fmt.Errorf("%w: part without Content-Length", ErrMalformed)
	}
	if r.SkipData {
		if n, err := r.r.Discard(length); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return p, fmt.Errorf("skip part data (%d of %d bytes): %w", n, length, err)
		}
	} else {
		if cap(r.data) < length {
			r.data = make([]byte, length)
		}
		p.Data = r.data[:length]
		if _, err := io.ReadFull(r.r, p.Data); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return p, fmt.Errorf("read part data: %w", err)
		}
	}
	// The data is followed by CRLF and the boundary line (or the closing
	// boundary "--b--").
	line, err := r.line()
	if err != nil {
		return p, fmt.Errorf("read part end: %w", err)
	}
	if len(line) == 0 {
		if line, err = r.line(); err != nil {
			return p, fmt.Errorf("read part end: %w", err)
		}
	}
	if !bytes.HasPrefix(line, r.boundary) {
		return p, fmt.Errorf("%w: expected boundary after %d-byte part, got %q", ErrMalformed, length, truncate(line))
	}
	return p, nil
}

// line reads one line without its CRLF or LF.
func (r *Reader) line() ([]byte, error) {
	line, err := r.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, r.r.Size())
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
