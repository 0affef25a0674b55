package frame

import (
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary records to the decoder: it must never panic,
// and whatever it accepts must be a whole JPEG or PNG with a valid camera id.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("cam"), encodeJPEG(f, 16, 8), []byte("7"), []byte("1700000000000000000"))
	f.Add([]byte(""), encodePNG(f, 5, 5), []byte("x"), []byte("-1"))
	f.Add([]byte("a/b"), []byte("\xff\xd8\xff\xe0garbage\xff\xd9"), []byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, key, value, seq, captured []byte) {
		fr, err := Decode(key, value, []Header{{HeaderSeq, seq}, {HeaderCapturedAt, captured}, {HeaderWidth, seq}}, time.Unix(1, 0), 3)
		if err != nil {
			return
		}
		if ValidateID(fr.Camera) != nil || (fr.ContentType != TypeJPEG && fr.ContentType != TypePNG) || !Complete(fr.Data) {
			t.Fatalf("accepted a bad record: camera %q type %q complete %v", fr.Camera, fr.ContentType, Complete(fr.Data))
		}
	})
}

// FuzzSniff checks the sniffer and the header readers on arbitrary bytes.
func FuzzSniff(f *testing.F) {
	f.Add(encodeJPEG(f, 3, 2))
	f.Add(encodePNG(f, 2, 3))
	f.Add([]byte("\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x20"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ := Sniff(b)
		w, h := Dimensions(b)
		if typ == "" && (w != 0 || h != 0 || Complete(b)) {
			t.Fatalf("non-image has dimensions %dx%d or is complete", w, h)
		}
		if w < 0 || h < 0 {
			t.Fatalf("negative dimensions %dx%d", w, h)
		}
	})
}
