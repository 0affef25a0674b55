package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// connKey is the request-context key of the client connection (set by
// the server's ConnContext), for socket options.
type connKey struct{}

// setUnsentLimit sets TCP_NOTSENT_LOWAT on the request's connection; the
// socket call itself is per platform (sockopt_linux.go, sockopt_other.go).
func setUnsentLimit(ctx context.Context, n int) error {
	c, ok := ctx.Value(connKey{}).(net.Conn)
	if !ok {
		return errors.New("no connection in context")
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("not a TCP connection: %T", c)
	}
	return setNotSentLowat(tc, n)
}
