package mjpeg

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzPartRoundTrip writes arbitrary parts and reads them back.
func FuzzPartRoundTrip(f *testing.F) {
	f.Add("image/jpeg", uint64(1), int64(1700000000123456000), []byte("\xff\xd8data\xff\xd9"))
	f.Add("image/png", uint64(0), int64(0), []byte("\r\n--"+Boundary+"\r\n"))
	f.Add("", uint64(1<<63), int64(-5), []byte{})
	f.Fuzz(func(t *testing.T, ct string, seq uint64, ts int64, data []byte) {
		if strings.ContainsAny(ct, "\r\n") {
			return // a content type never comes from a record with line breaks
		}
		p := Part{ContentType: strings.TrimSpace(ct), Seq: seq, Data: data}
		if ts > 0 {
			p.Timestamp = time.Unix(0, ts)
		}
		wire := AppendPart(append([]byte(nil), Opening...), p)
		var viaWriter bytes.Buffer
		if err := NewWriter(&viaWriter).WritePart(p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wire, viaWriter.Bytes()) {
			t.Fatal("AppendPart and WritePart differ")
		}
		got, err := NewReader(bytes.NewReader(wire), Boundary).Next()
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if got.ContentType != p.ContentType || got.Seq != seq || !bytes.Equal(got.Data, data) || got.Timestamp.UnixMicro() != p.Timestamp.UnixMicro() {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
	})
}

// FuzzReader reads arbitrary streams: errors are fine, panics and hangs not.
func FuzzReader(f *testing.F) {
	f.Add([]byte("--" + Boundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n--" + Boundary + "\r\n"))
	f.Add([]byte("--" + Boundary + "\r\nContent-Length: 99999999999\r\n\r\n"))
	f.Add([]byte("junk\n--" + Boundary + "\nX-Timestamp: 1.5\nContent-Length: 0\n\n\n--" + Boundary + "--\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream), Boundary)
		for i := 0; i < 100; i++ {
			p, err := r.Next()
			if err != nil {
				return
			}
			if len(p.Data) > len(stream) {
				t.Fatal("part larger than the stream")
			}
		}
	})
}
