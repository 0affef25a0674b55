package frame

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
	"time"
)

func encodeJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHeadersRoundTrip(t *testing.T) {
	captured := time.Unix(1700000000, 123456789)
	in := &Frame{Camera: "lobby", Seq: 42, CapturedAt: captured, Width: 64, Height: 48, ContentType: TypeJPEG, Data: encodeJPEG(t, 64, 48), NoSignal: true}
	out, err := Decode([]byte("lobby"), in.Data, in.Headers(), time.Unix(1, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if out.Camera != "lobby" || out.Seq != 42 || !out.CapturedAt.Equal(captured) || out.Width != 64 || out.Height != 48 || out.ContentType != TypeJPEG || !out.NoSignal {
		t.Fatalf("round trip: got %+v", out)
	}
}

func TestDecodeForeignRecords(t *testing.T) {
	recordTime := time.Unix(1700000001, 0)
	// A PNG with no key and no headers, as the seed tutorials' producer writes.
	f, err := Decode(nil, encodePNG(t, 33, 17), nil, recordTime, 9)
	if err != nil {
		t.Fatal(err)
	}
	if f.Camera != UnkeyedCamera || f.ContentType != TypePNG || f.Seq != 9 || !f.CapturedAt.Equal(recordTime) || f.Width != 33 || f.Height != 17 {
		t.Fatalf("foreign PNG: got %+v", f)
	}
	// Garbage numeric headers are ignored, the image is kept.
	f, err = Decode([]byte("cam"), encodeJPEG(t, 20, 10), []Header{{HeaderSeq, []byte("x")}, {HeaderCapturedAt, []byte("-5")}, {HeaderWidth, []byte("wide")}}, recordTime, 3)
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 3 || !f.CapturedAt.Equal(recordTime) || f.Width != 20 || f.Height != 10 {
		t.Fatalf("bad headers: got %+v", f)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"text", "cam", []byte("hello, this is not an image"), ErrNotImage},
		{"empty", "cam", nil, ErrNotImage},
		{"gif", "cam", []byte("GIF89a\x01\x00\x01\x00"), ErrNotImage},
		{"truncated jpeg", "cam", encodeJPEG(t, 64, 64)[:200], ErrTruncated},
		{"truncated png", "cam", encodePNG(t, 64, 64)[:40], ErrTruncated},
		{"bad key", "../etc", encodeJPEG(t, 8, 8), ErrBadKey},
		{"long key", string(bytes.Repeat([]byte("a"), MaxIDLen+1)), encodeJPEG(t, 8, 8), ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.key), tc.value, nil, time.Now(), 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCompleteAllowsPadding(t *testing.T) {
	j := append(encodeJPEG(t, 8, 8), 0, 0, 0)
	if !Complete(j) || !Complete(encodePNG(t, 3, 3)) {
		t.Fatal("whole images (JPEG with zero padding, PNG) rejected")
	}
}

func TestDimensionsOfTruncatedJPEG(t *testing.T) {
	full := encodeJPEG(t, 300, 200)
	if w, h := Dimensions(full); w != 300 || h != 200 {
		t.Fatalf("full: %dx%d", w, h)
	}
	for n := 0; n < len(full); n += 7 {
		Dimensions(full[:n]) // must not panic
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "lobby-1", "cam_2.north", "0"} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a b", "a/b", "é", "x?y"} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
