package redact

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// stderrDrain bounds how long RestoreStderr waits for the lines still in
// the pipe to be written out.
const stderrDrain = 2 * time.Second

// FilterStderr passes everything the process writes to its standard error
// (file descriptor 2) through Text before it reaches the real one: the
// logger's lines, and those of C libraries that streamd cannot tell what
// to print, such as OpenCV's, which quote a camera's URL, password and
// all, when a backend fails to open it (or FFmpeg's).
//
// Descriptor 2 becomes a pipe; one goroutine reads it line by line and
// writes each line, redacted, to the original standard error. A line
// longer than 64 KiB is passed on in pieces. The Go runtime's crash output
// (a panic's trace) also goes straight to the original, so a crash is
// never lost in the pipe (it is not filtered).
//
// The returned restore puts the original back and waits (at most 2 s) for
// the lines in the pipe to be written out; call it before the process
// exits. An error means nothing was changed.
func FilterStderr() (restore func(), err error) {
	orig, err := syscall.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("filter stderr: %w", err)
	}
	syscall.CloseOnExec(orig)
	r, w, err := os.Pipe()
	if err != nil {
		syscall.Close(orig)
		return nil, fmt.Errorf("filter stderr: %w", err)
	}
	// Flags 0: unlike the pipe's own descriptors, 2 stays open in child
	// processes, as a standard error does.
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		r.Close()
		w.Close()
		syscall.Close(orig)
		return nil, fmt.Errorf("filter stderr: %w", err)
	}
	w.Close() // descriptor 2 is now the pipe's only writer
	out := os.NewFile(uintptr(orig), "/dev/stderr")
	_ = debug.SetCrashOutput(out, debug.CrashOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyRedacted(out, r)
	}()
	return func() {
		// Descriptor 2 back to the original closes the pipe's last
		// writer: the copy reads what is left, then the end. A crash
		// from now on goes to descriptor 2 alone (not twice).
		_ = debug.SetCrashOutput(nil, debug.CrashOptions{})
		_ = syscall.Dup3(orig, 2, 0)
		select {
		case <-done:
		case <-time.After(stderrDrain):
		}
		r.Close()
	}, nil
}

// copyRedacted copies r to w line by line through Text, until r ends. A
// line longer than the buffer is passed on in pieces cut after a space,
// so that no URL is cut in two (and missed by Text).
func copyRedacted(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	var carry []byte // the end of a long line's piece, after its last space
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			piece := append(carry, line...)
			cut := bytes.LastIndexAny(piece, " \t") + 1
			if cut == 0 || len(piece)-cut > 64<<10 {
				cut = len(piece) // no space for too long: pass it on as it is
			}
			_, _ = io.WriteString(w, Text(string(piece[:cut])))
			carry = append([]byte(nil), piece[cut:]...)
			continue
		}
		if len(carry)+len(line) > 0 {
			_, _ = io.WriteString(w, Text(string(carry)+string(line)))
			carry = nil
		}
		if err != nil {
			return
		}
	}
}
