package mp4check

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// box returns an MP4 box of type typ holding the bodies.
func box(typ string, bodies ...[]byte) []byte {
	n := 8
	for _, b := range bodies {
		n += len(b)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	out = append(out, typ...)
	for _, b := range bodies {
		out = append(out, b...)
	}
	return out
}

// mvhd0 is a version 0 movie header: 4 bytes version and flags, creation
// and modification times, time scale, duration, then the rest (zeros).
func mvhd0(scale, dur uint32) []byte {
	b := make([]byte, 100)
	binary.BigEndian.PutUint32(b[12:], scale)
	binary.BigEndian.PutUint32(b[16:], dur)
	return box("mvhd", b)
}

// mvhd1 is a version 1 movie header, with 64-bit times and duration.
func mvhd1(scale uint32, dur uint64) []byte {
	b := make([]byte, 112)
	b[0] = 1
	binary.BigEndian.PutUint32(b[20:], scale)
	binary.BigEndian.PutUint64(b[24:], dur)
	return box("mvhd", b)
}

func join(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestParse(t *testing.T) {
	ftyp := box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2avc1mp41"))
	trak := box("trak", box("mdia", box("minf", box("stbl", box("stsd", make([]byte, 8), box("avc1", make([]byte, 78), box("avcC", []byte{1, 0x64, 0, 0x1f})))))))
	mdat := box("mdat", make([]byte, 1000))

	for _, tc := range []struct {
		name string
		file []byte
		want File
	}{
		{"version 0 header", join(ftyp, box("moov", mvhd0(1000, 2500), trak), mdat),
			File{Boxes: []string{"ftyp", "moov", "mdat"}, Duration: 2500 * time.Millisecond, H264: true}},
		{"version 1 header, mdat first, no H.264", join(ftyp, mdat, box("moov", mvhd1(90000, 90000*3))),
			File{Boxes: []string{"ftyp", "mdat", "moov"}, Duration: 3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(f.Boxes, " ") != strings.Join(tc.want.Boxes, " ") || f.Duration != tc.want.Duration || f.H264 != tc.want.H264 {
				t.Fatalf("Parse: %+v, want %+v", f, tc.want)
			}
			d, err := Duration(tc.file)
			if err != nil || d != tc.want.Duration {
				t.Fatalf("Duration: %v, %v; want %v", d, err, tc.want.Duration)
			}
		})
	}

	good := join(ftyp, box("moov", mvhd0(1000, 2500)), mdat)
	for _, tc := range []struct {
		name, want string
		file       []byte
	}{
		{"empty", "does not start with an ftyp box", nil},
		{"no ftyp first", "does not start with an ftyp box", join(mdat, box("moov", mvhd0(1000, 1)))},
		{"no mdat", "want moov and mdat", join(ftyp, box("moov", mvhd0(1000, 1)))},
		{"no mvhd", "no movie header", join(ftyp, box("moov", box("trak")), mdat)},
		{"time scale 0", "time scale 0", join(ftyp, box("moov", mvhd0(0, 1)), mdat)},
		{"zero duration", "no movie duration", join(ftyp, box("moov", mvhd0(1000, 0)), mdat)},
		{"truncated", "box \"mdat\" of 1008 bytes", good[:len(good)-1]},
		{"trailing bytes", "3 bytes left", append(good[:len(good):len(good)], 0, 0, 0)},
		{"box smaller than its header", "of 4 bytes", join(ftyp, []byte{0, 0, 0, 4, 'f', 'r', 'e', 'e'})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %+v, %v; want an error saying %q", f, err, tc.want)
			}
		})
	}
	if _, err := Duration(join(ftyp, mdat)); err == nil || !strings.Contains(err.Error(), "no moov box") {
		t.Fatalf("Duration without moov: %v", err)
	}
}
