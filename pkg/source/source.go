// Package source names the kinds of video source a camera can read and their
// defaults. It is pure Go, so that the configuration can check a source
// without OpenCV, and the capture package (which needs OpenCV) opens it.
package source

import (
	"strconv"
	"strings"
)

// Kind classifies a camera's source string.
type Kind int

// Kinds of sources.
const (
	Pattern Kind = iota + 1 // the built-in test pattern
	File                    // a video file on disk
	Device                  // a camera: index or /dev/videoN
	URL                     // a network stream: rtsp://, http://, ...
)

// TestPattern is the source string of the built-in moving test pattern.
const TestPattern = "testpattern"

// Defaults applied to a camera's zero fields.
const (
	DefaultQuality       = 80   // JPEG quality
	DefaultPatternWidth  = 1280 // test pattern size and rate
	DefaultPatternHeight = 720
	DefaultPatternFPS    = 30
)

// String names the kind as the configuration documents it.
func (k Kind) String() string {
	switch k {
	case Pattern:
		return "testpattern"
	case File:
		return "file"
	case Device:
		return "device"
	case URL:
		return "url"
	}
	return "unknown"
}

// KindOf returns the kind of source s names: "testpattern", a URL (anything
// with "://"), a device (an index such as "0", or /dev/videoN), else a file.
func KindOf(s string) Kind {
	switch {
	case s == TestPattern:
		return Pattern
	case strings.Contains(s, "://"):
		return URL
	case strings.HasPrefix(s, "/dev/video"):
		return Device
	}
	if _, err := strconv.Atoi(s); err == nil {
		return Device
	}
	return File
}
