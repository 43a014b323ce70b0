package proxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// What the proxy command runs: the --listen and --upstream forms and
// ListenAndServe.

// DefaultPort is the port of a listen address without one.
const DefaultPort = "5050"

// ListenAddr is the HOST:PORT the listen address s names: s without a
// colon gets DefaultPort; a port that is not a number in 0..65535 is an
// error.
func ListenAddr(s string) (string, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return net.JoinHostPort(s, DefaultPort), nil
	}
	host, port := s[:i], s[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("invalid port: %s", port)
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port), nil
}

// ParseUpstream splits an upstream [USER:PASS@]HOST at the last '@', then
// the credentials at the first ':'.
func ParseUpstream(s string) (host, user, pass string) {
	i := strings.LastIndex(s, "@")
	if i < 0 {
		return s, "", ""
	}
	user, pass, _ = strings.Cut(s[:i], ":")
	return s[i+1:], user, pass
}

// ListenAndServe makes the server of opts, listens on addr (HOST:PORT,
// see ListenAddr) and serves until ctx is cancelled (see Server.Serve).
func ListenAndServe(ctx context.Context, addr string, opts Options) error {
	srv, err := New(opts)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy: listen on %s: %w", addr, err)
	}
	return srv.Serve(ctx, l)
}
