//go:build !linux

package web

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// setNotSentLowat is not done outside Linux: streams keep the kernel's
// default send buffering (the caller logs the error at debug level).
func setNotSentLowat(_ *net.TCPConn, _ int) error {
	return fmt.Errorf("set TCP_NOTSENT_LOWAT on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
