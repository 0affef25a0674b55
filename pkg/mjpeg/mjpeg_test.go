package mjpeg

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWriteReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	ts := time.Unix(1700000000, 123456000)
	parts := []Part{
		{ContentType: "image/jpeg", Timestamp: ts, Seq: 1, Data: []byte("\xff\xd8first\xff\xd9")},
		{ContentType: "image/png", Timestamp: ts.Add(time.Second), Seq: 2, Data: []byte("second\r\n--" + Boundary + "\r\nnot a boundary")},
		{ContentType: "image/jpeg", Seq: 3, Data: nil},
	}
	for _, p := range parts {
		if err := w.WritePart(p); err != nil {
			t.Fatal(err)
		}
	}
	// Chrome needs the boundary right after each image.
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r\n--"+Boundary+"\r\n")) {
		t.Fatalf("stream does not end with a boundary: %q", buf.Bytes()[buf.Len()-30:])
	}
	if !strings.HasPrefix(buf.String(), "--"+Boundary+"\r\nContent-Type: image/jpeg\r\nContent-Length: 9\r\nX-Timestamp: 1700000000.123456\r\nX-Sequence: 1\r\n\r\n") {
		t.Fatalf("unexpected first part: %q", buf.String()[:120])
	}
	r := NewReader(&buf, Boundary)
	for i, want := range parts {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if got.ContentType != want.ContentType || got.Seq != want.Seq || !got.Timestamp.Equal(want.Timestamp) || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("part %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after last part: %v, want EOF", err)
	}
}

func TestAppendPartMatchesWriter(t *testing.T) {
	p1 := Part{ContentType: "image/jpeg", Timestamp: time.Unix(5, 6000), Seq: 9, Data: []byte("abc")}
	p2 := Part{ContentType: "image/png", Seq: 10, Data: []byte("defg")}
	var viaWriter bytes.Buffer
	w := NewWriter(&viaWriter)
	_ = w.WritePart(p1)
	_ = w.WritePart(p2)
	viaAppend := AppendPart(AppendPart(append([]byte(nil), Opening...), p1), p2)
	if !bytes.Equal(viaWriter.Bytes(), viaAppend) {
		t.Fatalf("AppendPart differs from WritePart:\n%q\n%q", viaWriter.Bytes(), viaAppend)
	}
}

func TestReaderSkipData(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range uint64(3) {
		if err := w.WritePart(Part{ContentType: "image/jpeg", Seq: i, Data: bytes.Repeat([]byte{byte(i)}, 70000)}); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf, Boundary)
	r.SkipData = true
	for i := range uint64(3) {
		p, err := r.Next()
		if err != nil || p.Seq != i || p.Data != nil {
			t.Fatalf("part %d: %v seq %d data %d", i, err, p.Seq, len(p.Data))
		}
	}
}

func TestReaderRejectsMalformed(t *testing.T) {
	for name, stream := range map[string]string{
		"no length":    "--b\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n--b\r\n",
		"bad length":   "--b\r\nContent-Length: -1\r\n\r\n",
		"huge length":  "--b\r\nContent-Length: 999999999999\r\n\r\n",
		"no colon":     "--b\r\nnonsense\r\n\r\n",
		"short data":   "--b\r\nContent-Length: 10\r\n\r\nabc",
		"no boundary":  "--b\r\nContent-Length: 2\r\n\r\nab\r\nxx\r\n",
		"bad sequence": "--b\r\nContent-Length: 2\r\nX-Sequence: q\r\n\r\nab\r\n--b\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(stream), "b").Next()
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error type: %v", err)
			}
		})
	}
}

func TestHeaderNamesFoldOnlyLetters(t *testing.T) {
	if !asciiEqualFold([]byte("content-LENGTH"), "Content-Length") {
		t.Fatal("case of letters must not matter")
	}
	if asciiEqualFold([]byte("Content\rLength"), "Content-Length") || asciiEqualFold([]byte("X@Sequence"), "X`Sequence") {
		t.Fatal("non-letters must match exactly")
	}
}

func TestTimestampFormat(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1700000000, 5000), "1700000000.000005"},
		{time.Unix(0, 0), "0.000000"},
		{time.Unix(12, 999999999), "12.999999"},
	} {
		if got := string(AppendTimestamp(nil, tc.t)); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.t, got, tc.want)
		}
		back, err := ParseTimestamp([]byte(tc.want))
		if err != nil || back.UnixMicro() != tc.t.UnixMicro() {
			t.Errorf("parse %s: %v %v", tc.want, back, err)
		}
	}
}

func TestWritePartAllocatesNothing(t *testing.T) {
	w := NewWriter(io.Discard)
	p := Part{ContentType: "image/jpeg", Timestamp: time.Now(), Seq: 7, Data: make([]byte, 100<<10)}
	if n := testing.AllocsPerRun(100, func() { _ = w.WritePart(p) }); n != 0 {
		t.Fatalf("WritePart allocates %.1f times per part", n)
	}
}

func BenchmarkWritePart(b *testing.B) {
	w := NewWriter(io.Discard)
	p := Part{ContentType: "image/jpeg", Timestamp: time.Now(), Seq: 7, Data: make([]byte, 150<<10)}
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Data)))
	for b.Loop() {
		p.Seq++
		_ = w.WritePart(p)
	}
}
