package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// countingRoundTripper applies the rate limit and counts every attempt. It
// does not implement CloseIdleConnections, so retryablehttp cannot empty the
// shared pool when one request gives up. gate holds a burst of first
// requests to a host until one connection is up (for HTTP/2, see waitFirst).
type countingRoundTripper struct {
	t          *Transport
	rt         http.RoundTripper
	unverified http.RoundTripper // for the hosts in t.skipVerify
	gate       bool
}

func (c *countingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	t := c.t
	if t.limiter != nil {
		r := t.limiter.Reserve()
		if d := r.Delay(); d > 0 {
			t.c.rateLimitWaits.Add(1)
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-req.Context().Done():
				timer.Stop()
				r.Cancel()
				if req.Body != nil {
					_ = req.Body.Close()
				}
				return nil, req.Context().Err()
			}
		}
	}
	if t.adapt != nil {
		t.adapt.sent()
	}
	var first chan struct{}
	var err error
	if c.gate {
		first, err = t.waitFirst(req)
	}
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	rt := c.rt
	if t.skipsVerify(req.URL.Host) {
		rt = c.unverified
	}
	loopback := req.URL.Scheme == "https" && isLoopback(req.URL.Hostname())
	if _, ok := t.plain.Load(req.URL.Host); ok && loopback {
		req = asPlainHTTP(req, req.Body)
		loopback = false
	}
	t.c.requests.Add(1)
	// The request gets its own context, cancelled when its body or the
	// response's stalls (which is how a blocked read or write is
	// interrupted) or when the response body is closed.
	ctx, cancel := context.WithCancelCause(req.Context())
	var send *sendBody
	if req.Body != nil && req.Body != http.NoBody {
		send = &sendBody{ReadCloser: &countingBody{ReadCloser: req.Body, n: &t.c.bytesOut}, timeout: t.opts.StallTimeout}
		send.timer = time.AfterFunc(t.opts.StallTimeout, func() { cancel(ErrStalled) })
		send.timer.Stop()
		req.Body = send
	}
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if send != nil {
		send.finish()
	}
	if err != nil && loopback && speaksPlainHTTP(err) {
		// A registry on this machine without TLS: use plain HTTP for it
		// from now on, as docker and crane do, and send this request again
		// when it has no body (the first request to a host is a GET or
		// HEAD; one with a body fails as it would have).
		t.plain.Store(req.URL.Host, true)
		zerolog.Ctx(req.Context()).Debug().Str("host", req.URL.Host).Msg("Registry on a loopback address speaks plain HTTP; using it")
		if send == nil {
			t.c.requests.Add(1)
			resp, err = rt.RoundTrip(asPlainHTTP(req.WithContext(ctx), http.NoBody))
		}
	}
	if first != nil {
		close(first)
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrStalled) {
			err = fmt.Errorf("%w: the server took none of the request body for %s (%v)", ErrStalled, t.opts.StallTimeout, err)
		}
		cancel(nil)
		return nil, err
	}
	timer := time.AfterFunc(t.opts.StallTimeout, func() { cancel(ErrStalled) })
	timer.Stop()
	resp.Body = &stallBody{
		ReadCloser: &countingBody{ReadCloser: resp.Body, n: &t.c.bytesIn},
		ctx:        ctx, cancel: cancel, timeout: t.opts.StallTimeout, timer: timer,
	}
	return resp, nil
}

// isLoopback reports whether host (no port) is localhost or in 127.0.0.0/8
// or ::1: registries there may speak plain HTTP without --insecure.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// speaksPlainHTTP reports whether err is what a TLS client gets from a
// server that answered in plain HTTP.
func speaksPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// asPlainHTTP is req sent over http:// with body.
func asPlainHTTP(req *http.Request, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme = "http"
	r.Body = body
	return r
}

// setVerify records whether host's certificate is verified.
func (t *Transport) setVerify(host string, verify bool) { t.skipVerify.Store(host, !verify) }

// skipsVerify reports whether host's certificate is left unverified.
func (t *Transport) skipsVerify(host string) bool {
	if v, ok := t.skipVerify.Load(host); ok {
		return v.(bool)
	}
	return t.opts.SkipVerify
}

// waitFirst holds requests to an https host until the first request to it
// has been answered. Without it, a burst of parallel requests to a new host
// (an image's layer HEADs or GETs) makes the pool dial and handshake one TLS
// connection per request, and all but one are thrown away once HTTP/2 is
// negotiated on the first. The first request gets a channel to close when
// it is answered (or failed); the others wait for it, or their context.
func (t *Transport) waitFirst(req *http.Request) (first chan struct{}, err error) {
	if req.URL.Scheme != "https" {
		return nil, nil
	}
	key := req.URL.Host
	t.gatesMu.Lock()
	g, seen := t.gates[key]
	if !seen {
		g = make(chan struct{})
		t.gates[key] = g
		t.gatesMu.Unlock()
		return g, nil
	}
	t.gatesMu.Unlock()
	select {
	case <-g:
		return nil, nil
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}
