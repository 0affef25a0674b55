package vision_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamd/streamd/pkg/tfjs"
	"github.com/streamd/streamd/pkg/vision"
	"github.com/streamd/streamd/pkg/vision/visiontest"
)

// modelPath is the installed object model (make deps installs it), or
// STREAMD_MODEL. A missing model fails the test: object detection is on
// by default, so its tests must run.
func modelPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("STREAMD_MODEL")
	if p == "" {
		p = vision.DefaultModel
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the object model is missing (make deps installs it, or set STREAMD_MODEL): %v", err)
	}
	return p
}

func newObjects(t testing.TB, o vision.ObjectOptions) *vision.ObjectDetector {
	t.Helper()
	if o.Model == "" {
		o.Model = modelPath(t)
	}
	d, err := vision.NewObjectDetector(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// peopleFrame is the first frame of vtest.avi (768x576, three people in
// the hall) as a JPEG, at its own size or resized.
func peopleFrame(t testing.TB, w, h int) []byte {
	t.Helper()
	fs, err := visiontest.ReadVideo(filepath.Join(visiontest.DataDir, visiontest.PeopleVideo), 1, w, h, 90)
	if err != nil || len(fs) == 0 {
		t.Fatalf("read %s: %v", visiontest.PeopleVideo, err)
	}
	return fs[0].JPEG
}

func people(objs []vision.Object, minScore float64) []vision.Object {
	var out []vision.Object
	for _, o := range objs {
		if o.Label == "person" && o.Score >= minScore {
			out = append(out, o)
		}
	}
	return out
}

// vtestPeople are the three people of vtest.avi's first frame
// (normalized), each box checked by eye on the frame drawn with it: the
// man in a dark coat left of the lamp post, the man walking towards the
// camera at the top, the woman walking on the right.
var vtestPeople = []vision.Box{
	{X: 0.327, Y: 0.384, W: 0.040, H: 0.149},
	{X: 0.648, Y: 0.274, W: 0.040, H: 0.127},
	{X: 0.833, Y: 0.417, W: 0.055, H: 0.141},
}

// vtestCar is the car cut by the frame's right edge, top right.
var vtestCar = vision.Box{X: 0.943, Y: 0.087, W: 0.057, H: 0.078}

func TestObjectsPeople(t *testing.T) {
	for _, size := range []int{320, 512} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			d := newObjects(t, vision.ObjectOptions{Size: size})
			for _, dim := range [][2]int{{768, 576}, {1280, 720}} {
				objs, err := d.Detect(peopleFrame(t, dim[0], dim[1]), nil)
				if err != nil {
					t.Fatal(err)
				}
				got := people(objs, 0.45)
				t.Logf("%dx%d at %d: %v", dim[0], dim[1], size, objs)
				for i, truth := range vtestPeople {
					best := 0.0
					for _, p := range got {
						best = max(best, vision.IoU(p.Box, truth))
					}
					if best < 0.3 {
						t.Errorf("%dx%d: person %d (%+v) not found at score ≥ 0.45 (best IoU %.2f); people: %v", dim[0], dim[1], i, truth, best, got)
					}
				}
				car := false
				for _, o := range objs {
					car = car || (o.Label == "car" && o.Score >= 0.35 && vision.IoU(o.Box, vtestCar) >= 0.3)
				}
				if !car {
					t.Errorf("%dx%d: the car at the right edge not found: %v", dim[0], dim[1], objs)
				}
				if len(got) > len(vtestPeople) {
					t.Errorf("%dx%d: %d people, want 3: %v", dim[0], dim[1], len(got), got)
				}
			}
		})
	}
}

// TestObjectsRegion: searching a small region around one person finds
// that person, at the model's resolution, and nobody outside it.
func TestObjectsRegion(t *testing.T) {
	d := newObjects(t, vision.ObjectOptions{})
	img := peopleFrame(t, 1280, 720)
	truth := vtestPeople[1]
	objs, err := d.Detect(img, &truth)
	if err != nil {
		t.Fatal(err)
	}
	got := people(objs, 0.45)
	if len(got) != 1 || vision.IoU(got[0].Box, truth) < 0.3 {
		t.Fatalf("region %+v: people %v, want the one in it", truth, got)
	}
	// The box is of the whole frame: the same place the whole-frame
	// search puts it.
	whole, err := d.Detect(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	best := 0.0
	for _, p := range people(whole, 0.45) {
		best = max(best, vision.IoU(p.Box, got[0].Box))
	}
	if best < 0.5 {
		t.Errorf("region box %+v matches no whole-frame box (best IoU %.2f)", got[0].Box, best)
	}
}

func TestObjectErrors(t *testing.T) {
	model := modelPath(t)
	dir := t.TempDir()
	copyModel := func(name string, edit func(bin []byte) []byte) string {
		t.Helper()
		js, err := os.ReadFile(model)
		if err != nil {
			t.Fatal(err)
		}
		bin, err := os.ReadFile(strings.TrimSuffix(model, ".json") + ".bin")
		if err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(dir, name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "centernet.json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "centernet.bin"), edit(bin), 0o644); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(sub, "centernet.json")
	}
	missing := filepath.Join(dir, "nowhere", "centernet.json")
	short := copyModel("short", func(b []byte) []byte { return b[:len(b)/2] })
	for _, c := range []struct {
		name string
		opt  vision.ObjectOptions
		is   error
		want string
	}{
		{"missing", vision.ObjectOptions{Model: missing}, os.ErrNotExist, missing},
		{"truncated weights", vision.ObjectOptions{Model: short}, tfjs.ErrBadModel, short},
		{"not a model", vision.ObjectOptions{Model: "/etc/passwd"}, tfjs.ErrBadModel, "/etc/passwd"},
		{"size", vision.ObjectOptions{Model: model, Size: 300}, nil, "size 300"},
		{"min score", vision.ObjectOptions{Model: model, MinScore: 1.5}, nil, "min score 1.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := vision.NewObjectDetector(c.opt)
			if err == nil {
				d.Close()
				t.Fatal("no error")
			}
			if (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: want %v naming %q", err, c.is, c.want)
			}
		})
	}

	d := newObjects(t, vision.ObjectOptions{})
	img := peopleFrame(t, 768, 576)
	for name, bad := range map[string][]byte{
		"truncated": img[:len(img)/2],
		"empty":     nil,
		"not jpeg":  []byte("hello, world"),
	} {
		if _, err := d.Detect(bad, nil); !errors.Is(err, vision.ErrBadImage) {
			t.Errorf("%s: %v, want ErrBadImage", name, err)
		}
	}
	// The detector still works after bad frames.
	if objs, err := d.Detect(img, nil); err != nil || len(people(objs, 0.45)) != 3 {
		t.Errorf("after bad frames: %v, %v", objs, err)
	}
	d.Close()
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Detect(img, nil); !errors.Is(err, vision.ErrClosed) {
		t.Errorf("Detect after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkObjects720p measures one detection on a 720p JPEG of people
// (decode, resize and inference) at each input size, on the whole frame
// and on a region around one person, with OpenCV on one thread (as the
// analyzer runs it) and on every core (OpenCV's default).
func BenchmarkObjects720p(b *testing.B) {
	img := peopleFrame(b, 1280, 720)
	defer vision.SetThreads(0)
	for _, threads := range []int{1, 0} {
		vision.SetThreads(threads)
		tname := "threads-1"
		if threads == 0 {
			tname = "threads-all"
		}
		for _, size := range []int{320, 384, 512} {
			for _, region := range []bool{false, true} {
				name := fmt.Sprintf("%s/%d-frame", tname, size)
				var r *vision.Box
				if region {
					name = fmt.Sprintf("%s/%d-region", tname, size)
					r = &vtestPeople[1]
				}
				b.Run(name, func(b *testing.B) {
					d := newObjects(b, vision.ObjectOptions{Size: size})
					loop(b, func(int) {
						if _, err := d.Detect(img, r); err != nil {
							b.Fatal(err)
						}
					})
				})
			}
		}
	}
}

func TestSetThreads(t *testing.T) {
	defer vision.SetThreads(0)
	vision.SetThreads(1)
	if n := vision.Threads(); n != 1 {
		t.Errorf("Threads() = %d after SetThreads(1)", n)
	}
	vision.SetThreads(0)
	if n := vision.Threads(); n < 1 {
		t.Errorf("Threads() = %d after SetThreads(0), want OpenCV's default", n)
	}
}
