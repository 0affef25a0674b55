package visiontest

import (
	"bytes"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"
)

// TestClips: every clip has the frames, size and truth it promises, and the
// same options give the same bytes.
func TestClips(t *testing.T) {
	o := Options{Width: 320, Height: 180, Frames: 24, Warmup: 4}
	brightness := func(o Options) ([]Frame, error) {
		f, step, err := BrightnessStep(o)
		if err == nil && step != o.Frames/2 {
			t.Errorf("brightness step at %d, want %d", step, o.Frames/2)
		}
		return f, err
	}
	for name, clip := range map[string]func(Options) ([]Frame, error){
		"still": Still, "object": MovingObject, "face": MovingFace, "brightness": brightness,
	} {
		frames, err := clip(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(frames) != o.Frames {
			t.Fatalf("%s: %d frames, want %d", name, len(frames), o.Frames)
		}
		moving := name == "object" || name == "face"
		for i, f := range frames {
			m, err := gocv.IMDecode(f.JPEG, gocv.IMReadColor)
			if err != nil || m.Cols() != o.Width || m.Rows() != o.Height {
				t.Fatalf("%s frame %d: decodes to %dx%d (%v)", name, i, m.Cols(), m.Rows(), err)
			}
			m.Close()
			wantTruth := moving && i >= o.Warmup
			if (len(f.Truth) == 1) != wantTruth || len(f.Truth) > 1 {
				t.Fatalf("%s frame %d: truth %v", name, i, f.Truth)
			}
			for _, b := range f.Truth {
				if b.X < 0 || b.Y < 0 || b.W <= 0 || b.H <= 0 || b.X+b.W > 1 || b.Y+b.H > 1 {
					t.Errorf("%s frame %d: truth %v outside the frame", name, i, b)
				}
			}
		}
		if moving && frames[o.Frames-1].Truth[0].X <= frames[o.Warmup].Truth[0].X+0.5 {
			t.Errorf("%s: the truth does not cross the frame: %v to %v", name, frames[o.Warmup].Truth[0], frames[o.Frames-1].Truth[0])
		}
		again, err := clip(o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range frames {
			if !bytes.Equal(frames[i].JPEG, again[i].JPEG) {
				t.Fatalf("%s frame %d differs between two runs", name, i)
			}
		}
	}
	if _, err := Still(Options{Width: 8}); err == nil {
		t.Error("8 pixels wide: no error")
	}
}

func TestReadWriteVideo(t *testing.T) {
	frames, err := MovingObject(Options{Width: 320, Height: 180, Frames: 12})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "clip.avi")
	if err := WriteVideo(path, frames, 5); err != nil {
		t.Fatal(err)
	}
	back, err := ReadVideo(path, 0, 160, 90, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(frames) {
		t.Fatalf("read %d frames, wrote %d", len(back), len(frames))
	}
	if _, err := ReadVideo(filepath.Join(t.TempDir(), "missing.avi"), 0, 0, 0, 0); err == nil {
		t.Error("missing video: no error")
	}
	if err := WriteVideo(path, []Frame{{JPEG: []byte("x")}}, 5); err == nil {
		t.Error("undecodable frame: no error")
	}
}

func TestScriptedMotion(t *testing.T) {
	frames, err := ScriptedMotion(160, 90)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != ScriptedMotionFrames {
		t.Fatalf("%d frames, want %d", len(frames), ScriptedMotionFrames)
	}
	first, last := -1, -1
	for i, f := range frames {
		if len(f.Truth) > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	// The object enters after the still 5 s, is gone within 3 s, and the
	// last 2 s are still.
	if first < ScriptedMotionStill || last >= ScriptedMotionStill+3*ScriptedMotionFPS || last < first {
		t.Fatalf("object in frames %d to %d; want within [%d, %d)", first, last, ScriptedMotionStill, ScriptedMotionStill+3*ScriptedMotionFPS)
	}
	path := filepath.Join(t.TempDir(), "scripted.avi")
	if err := WriteScriptedMotion(path, 160, 90); err != nil {
		t.Fatal(err)
	}
	back, err := ReadVideo(path, 0, 0, 0, 0)
	if err != nil || len(back) != ScriptedMotionFrames {
		t.Fatalf("read back %d frames (%v), want %d", len(back), err, ScriptedMotionFrames)
	}
}
