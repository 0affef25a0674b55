package source

import "testing"

func TestKindOf(t *testing.T) {
	for s, want := range map[string]Kind{
		"testpattern":     Pattern,
		"0":               Device,
		"/dev/video2":     Device,
		"rtsp://cam/1":    URL,
		"http://h/x.mjpg": URL,
		"/srv/video.mp4":  File,
		"relative.avi":    File,
		"testpattern.avi": File,
		"":                File,
	} {
		if got := KindOf(s); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", s, got, want)
		}
	}
}
