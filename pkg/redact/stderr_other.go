//go:build !linux

package redact

// FilterStderr does nothing where descriptors cannot be swapped as on
// Linux (streamd runs on Linux; other systems build it for development).
func FilterStderr() (restore func(), err error) { return func() {}, nil }
