package capture

import (
	"slices"
	"testing"
)

func TestReloadDiff(t *testing.T) {
	a := Options{ID: "a", Source: "testpattern", FPS: 10}
	b := Options{ID: "b", Source: "testpattern", FPS: 10}
	c := Options{ID: "c", Source: "x.mp4"}
	bChanged := b
	bChanged.Substream.Width = 320
	keep, stop, start := reloadDiff([]Options{a, b, c}, []Options{bChanged, a, {ID: "d", Source: "testpattern"}})
	if !slices.Equal(keep, []int{0}) {
		t.Errorf("keep = %v, want [0] (a unchanged)", keep)
	}
	if !slices.Equal(stop, []int{1, 2}) {
		t.Errorf("stop = %v, want [1 2] (b changed, c removed)", stop)
	}
	var ids []string
	for _, o := range start {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []string{"b", "d"}) || start[0] != bChanged {
		t.Errorf("start = %v, want b (with its new options) and d, in the new order", start)
	}
	keep, stop, start = reloadDiff([]Options{a, b}, []Options{a, b})
	if len(keep) != 2 || len(stop) != 0 || len(start) != 0 {
		t.Errorf("same cameras: keep %v, stop %v, start %v; want everything kept", keep, stop, start)
	}
}
