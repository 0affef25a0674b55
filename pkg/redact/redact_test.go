package redact

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://admin:hunter2@127.0.0.1:1/stream", "rtsp://***@127.0.0.1:1/stream"},
		{"rtsp://admin@cam.local/stream", "rtsp://***@cam.local/stream"},
		{"mqtt://user:p%40ss@broker:1883", "mqtt://***@broker:1883"},
		{"https://hooks.example/x?token=abc&camera=yard", "https://hooks.example/x?token=***&camera=yard"},
		{"http://cam/snapshot.cgi?user=admin&PWD=secret", "http://cam/snapshot.cgi?user=admin&PWD=***"},
		{"https://u:p@h/p?api_key=k#frag", "https://***@h/p?api_key=***#frag"},
		{"https://hooks.example/path", "https://hooks.example/path"},
		{"testpattern", "testpattern"},
		{"/var/video/yard.mp4", "/var/video/yard.mp4"},
		{"0", "0"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestURLThatDoesNotParseIsRedactedAsText(t *testing.T) {
	in := "rtsp://admin:hunter2@cam/%zz"
	got := URL(in)
	if strings.Contains(got, "hunter2") || strings.Contains(got, "admin") {
		t.Errorf("URL(%q) = %q: credentials left", in, got)
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`open url rtsp://admin:hunter2@127.0.0.1:1/stream: cannot open or decode it`,
			`open url rtsp://***@127.0.0.1:1/stream: cannot open or decode it`},
		{`Post "https://bob:pw@hooks.example/in?sig=abc": dial tcp: refused`,
			`Post "https://***@hooks.example/in?sig=***": dial tcp: refused`},
		{"two: a://x:y@h1/ and b://z@h2/", "two: a://***@h1/ and b://***@h2/"},
		{"post to http://h:1/hook?token=abc: dial tcp 127.0.0.1:1: connect: connection refused",
			"post to http://h:1/hook?token=***: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"GET /x?key=a:b:c&x=1 and ?pwd=z", "GET /x?key=***&x=1 and ?pwd=***"},
		{"?token=a:b:\n", "?token=***:\n"}, // a colon before a space is the message's
		{"mail me at bob@example.com", "mail me at bob@example.com"},
		{"no url here", "no url here"},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	base := fmt.Errorf("open rtsp://admin:hunter2@cam/s: %w", io.EOF)
	err := Error(base)
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, io.EOF) {
		t.Errorf("Error: %q (is EOF: %v)", err, errors.Is(err, io.EOF))
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	if plain := errors.New("plain"); Error(plain) != plain {
		t.Error("an error with nothing to redact was replaced")
	}
}
