package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Options tune a Transport. The zero value is usable: 4 layers at once, 3
// images at once, 3 retries, no rate limit.
type Options struct {
	// Parallel (-j) and ImageParallel (-J) size the keep-alive pool.
	Parallel      int
	ImageParallel int
	// Retries is how many times a failed request is retried; negative means
	// none. NoRetries forces 0 even when Retries is 0 (the zero value means
	// the default of 3).
	Retries   int
	NoRetries bool
	// RateLimit is the most requests per second, shared by every goroutine;
	// 0 or less is unlimited.
	RateLimit float64
	// RateLimitAuto adapts the rate instead (--rate-limit auto): unlimited
	// until a 429 or 503, then halved, and grown back after every
	// AdaptQuiet (default 2 s) without one. RateLimit is ignored.
	RateLimitAuto bool
	AdaptQuiet    time.Duration
	// RootCAs replaces the trusted roots (tests). Nil means the system roots
	// plus SSL_CERT_FILE and SSL_CERT_DIR.
	RootCAs *x509.CertPool
	// CAFile names a PEM file whose certificates are trusted besides the
	// roots (--ca-file: a private CA).
	CAFile string
	// SkipVerify accepts any TLS certificate from every host
	// (--tls-verify=false). RegistryOptions.SkipVerify does it for one.
	SkipVerify bool
	// RetryWaitMin and RetryWaitMax bound the backoff (defaults 200 ms, 30 s).
	// A Retry-After is honoured up to MaxRetryAfter (default 60 s); a longer
	// one is cut to it, with a warning.
	RetryWaitMin  time.Duration
	RetryWaitMax  time.Duration
	MaxRetryAfter time.Duration
	// StallTimeout is how long a response body may send nothing before the
	// read fails with ErrStalled (default 60 s), so that a blob download is
	// resumed as after a cut connection and anything else fails rather
	// than hang.
	StallTimeout time.Duration
	// Username and Password are the global credentials (--username,
	// --password), used for every registry unless a Registry gets its own.
	Username string
	Password string
	// DockerConfig is the folder of Docker's config.json; empty means
	// $DOCKER_CONFIG, else ~/.docker.
	DockerConfig string
	// Secret, if set, is told every secret the Transport comes to hold
	// besides the ones above (passwords from Docker's config.json or its
	// credential helpers, registry tokens), so that the caller can keep
	// them out of anything it prints. It may be called concurrently.
	Secret func(string)
}

// Defaults of Options.
const (
	DefaultStallTimeout  = 60 * time.Second
	DefaultMaxRetryAfter = 60 * time.Second
)

// Stats is a snapshot of a Transport's counters.
type Stats struct {
	Requests       int64 // HTTP requests sent, retries included
	Retries        int64 // requests that were retries
	RateLimited    int64 // 429 responses received
	RateLimitWaits int64 // requests the --rate-limit limiter delayed
	// RateLimit is the rate limit now, requests per second (0: none); with
	// --rate-limit auto it moves.
	RateLimit     float64
	Connections   int64 // new TCP connections
	TLSHandshakes int64 // TLS handshakes completed
	BytesIn       int64 // response body bytes read
	BytesOut      int64 // request body bytes sent
	Resumes       int64 // blob downloads resumed with a Range request
	TokenFetches  int64 // tokens fetched from an auth server
	BlobUploads   int64 // blobs uploaded (push)
	BlobMounts    int64 // blobs mounted from another repository (push)
	BlobsExisting int64 // blobs a HEAD found already present (push)
	UploadResumes int64 // upload chunks resumed at the registry's offset
}

type counters struct {
	requests, retries, rateLimited, rateLimitWaits atomic.Int64
	conns, handshakes, bytesIn, bytesOut           atomic.Int64
	resumes, tokenFetches                          atomic.Int64
	uploads, mounts, existing, uploadResumes       atomic.Int64
}

// Transport is the process's HTTP layer. Make one with New and share it.
type Transport struct {
	opts   Options
	hc     *http.Client
	rt     *http.Transport
	client *retryablehttp.Client
	// bulk carries upload bodies over HTTP/1.1, one connection per upload
	// in flight (see Request.Bulk).
	bulkRT     *http.Transport
	bulkClient *retryablehttp.Client
	limiter    *rate.Limiter
	adapt      *adaptive // --rate-limit auto; its limiter is limiter
	c          counters
	creds      *credentialStore

	mu         sync.Mutex
	registries map[string]*hostAuth

	gatesMu sync.Mutex
	gates   map[string]chan struct{} // per https host: closed once its first request is answered

	// skipVerify holds, per host, whether its certificate is left
	// unverified (RegistryOptions), opts.SkipVerify for the hosts it does
	// not hold; unverified requests go through the twins of rt and bulkRT.
	skipVerify       sync.Map
	unverifiedRT     *http.Transport
	unverifiedBulkRT *http.Transport
	// plain holds the loopback hosts found to speak plain HTTP.
	plain sync.Map
}

// New builds the Transport.
func New(opts Options) (*Transport, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.ImageParallel <= 0 {
		opts.ImageParallel = 3
	}
	switch {
	case opts.NoRetries || opts.Retries < 0:
		opts.Retries = 0
	case opts.Retries == 0:
		opts.Retries = 3
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = 200 * time.Millisecond
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = 30 * time.Second
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	roots := opts.RootCAs
	if roots == nil {
		var err error
		if roots, err = systemRoots(); err != nil {
			return nil, err
		}
	}
	if opts.CAFile != "" {
		b, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		roots = roots.Clone()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	t := &Transport{opts: opts, registries: map[string]*hostAuth{}, gates: map[string]chan struct{}{}}
	t.creds = newCredentialStore(opts.DockerConfig)

	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	pool := opts.Parallel*opts.ImageParallel + 4
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			t.c.conns.Add(1)
		}
		return c, err
	}
	tlsConfig := &tls.Config{
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		VerifyConnection: func(tls.ConnectionState) error {
			t.c.handshakes.Add(1)
			return nil
		},
	}
	t.rt = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          pool * 2,
		MaxIdleConnsPerHost:   pool,
		MaxConnsPerHost:       pool,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	// Upload bodies go over HTTP/1.1: on HTTP/2 every upload to a host
	// shares one connection whose flow-control window the server sets
	// (Go's net/http server: 1 MiB for the whole connection, so 1 MiB per
	// round trip however many uploads run; nginx's is smaller), while an
	// HTTP/1.1 connection per upload is limited only by TCP.
	h1 := new(http.Protocols)
	h1.SetHTTP1(true)
	t.bulkRT = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tlsConfig.Clone(),
		Protocols:             h1,
		MaxIdleConns:          pool * 2,
		MaxIdleConnsPerHost:   pool,
		MaxConnsPerHost:       pool,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
	// The twins for hosts whose certificates are not verified. Their pools
	// stay empty unless such a host is used.
	t.unverifiedRT, t.unverifiedBulkRT = t.rt.Clone(), t.bulkRT.Clone()
	t.unverifiedRT.TLSClientConfig.InsecureSkipVerify = true     //nolint:gosec // per host, asked for
	t.unverifiedBulkRT.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // per host, asked for
	switch {
	case opts.RateLimitAuto:
		quiet := opts.AdaptQuiet
		if quiet <= 0 {
			quiet = 2 * time.Second
		}
		t.adapt = newAdaptive(quiet, nil)
		t.limiter = t.adapt.lim
	case opts.RateLimit > 0:
		t.limiter = rate.NewLimiter(rate.Limit(opts.RateLimit), 1)
	}
	t.hc = &http.Client{
		Transport:     &countingRoundTripper{t: t, rt: t.rt, unverified: t.unverifiedRT, gate: true},
		CheckRedirect: checkRedirect,
	}
	t.client = t.retrying(t.hc)
	t.bulkClient = t.retrying(&http.Client{
		Transport:     &countingRoundTripper{t: t, rt: t.bulkRT, unverified: t.unverifiedBulkRT},
		CheckRedirect: checkRedirect,
	})
	return t, nil
}

// retrying wraps hc in the retry policy.
func (t *Transport) retrying(hc *http.Client) *retryablehttp.Client {
	opts := t.opts
	return &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     opts.Retries,
		CheckRetry:   t.checkRetry,
		Backoff:      t.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, attempt int) {
			if attempt > 0 {
				t.c.retries.Add(1)
				zerolog.Ctx(req.Context()).Debug().Str("method", req.Method).
					Str("host", req.URL.Host).Str("path", req.URL.Path).
					Int("attempt", attempt).Msg("Retrying request")
			}
		},
	}
}

// Stats returns the counters so far.
func (t *Transport) Stats() Stats {
	return Stats{
		Requests:       t.c.requests.Load(),
		Retries:        t.c.retries.Load(),
		RateLimited:    t.c.rateLimited.Load(),
		RateLimitWaits: t.c.rateLimitWaits.Load(),
		RateLimit:      t.rateLimit(),
		Connections:    t.c.conns.Load(),
		TLSHandshakes:  t.c.handshakes.Load(),
		BytesIn:        t.c.bytesIn.Load(),
		BytesOut:       t.c.bytesOut.Load(),
		Resumes:        t.c.resumes.Load(),
		TokenFetches:   t.c.tokenFetches.Load(),
		BlobUploads:    t.c.uploads.Load(),
		BlobMounts:     t.c.mounts.Load(),
		BlobsExisting:  t.c.existing.Load(),
		UploadResumes:  t.c.uploadResumes.Load(),
	}
}

// rateLimit is the current rate limit in requests per second, 0 for none.
func (t *Transport) rateLimit() float64 {
	switch {
	case t.adapt != nil:
		return t.adapt.rate()
	case t.limiter != nil:
		return float64(t.limiter.Limit())
	}
	return 0
}

// Close closes the idle connections of the pool.
func (t *Transport) Close() {
	t.rt.CloseIdleConnections()
	t.bulkRT.CloseIdleConnections()
	t.unverifiedRT.CloseIdleConnections()
	t.unverifiedBulkRT.CloseIdleConnections()
}

// secret passes s to Options.Secret.
func (t *Transport) secret(s string) {
	if t.opts.Secret != nil && s != "" {
		t.opts.Secret(s)
	}
}

// Retries is the configured retry count.
func (t *Transport) Retries() int { return t.opts.Retries }

// do sends one request through the retrying client. body, when not nil, is
// re-opened for every attempt.
func (t *Transport) do(req *http.Request, body retryablehttp.ReaderFunc) (*http.Response, error) {
	return t.doWith(t.client, req, body)
}

// doWith is do through client c.
func (t *Transport) doWith(c *retryablehttp.Client, req *http.Request, body retryablehttp.ReaderFunc) (*http.Response, error) {
	var raw any
	var guards guardSet
	if body != nil {
		// Every attempt's body is guarded: once Do returns, the transport
		// can no longer read it. net/http may go on reading a request body
		// in its own goroutine after RoundTrip returned (a cancelled or
		// early-answered request), and callers reuse what backs the body (a
		// pooled buffer, the next chunk of a stream) as soon as Do returns.
		raw = retryablehttp.ReaderFunc(func() (io.Reader, error) {
			r, err := body()
			if err != nil {
				return nil, err
			}
			return guards.add(r), nil
		})
		defer guards.closeAll()
	}
	// rreq wraps req itself: SetBody overwrites req.ContentLength with
	// what it can see (0 for a stream), so the caller's is kept first.
	n := req.ContentLength
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		if err := rreq.SetBody(raw); err != nil {
			return nil, err
		}
		rreq.ContentLength = n
	}
	return c.Do(rreq)
}

// checkRedirect follows up to 10 redirects and drops credentials when a
// redirect leaves the original host (blob storage redirects are normal).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

func (t *Transport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		t.c.rateLimited.Add(1)
	}
	if t.adapt != nil && resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if r, cut := t.adapt.rejected(); cut {
			zerolog.Ctx(ctx).Info().Str("event", "rate_limit").Str("host", resp.Request.URL.Host).
				Int("status", resp.StatusCode).Float64("rate_limit_per_s", r).Msg("Rate limit lowered")
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff honours Retry-After on 429 and 503, and is otherwise exponential
// with jitter: a random wait in [d/2, d], d = min * 2^attempt, capped at max.
func (t *Transport) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if d > t.opts.MaxRetryAfter {
				if resp.Request != nil {
					zerolog.Ctx(resp.Request.Context()).Warn().Str("host", resp.Request.URL.Host).
						Str("retry_after", resp.Header.Get("Retry-After")).Dur("waiting", t.opts.MaxRetryAfter).
						Msg("Retry-After is longer than --max-retry-after: waiting that long instead")
				}
				return t.opts.MaxRetryAfter
			}
			return d
		}
	}
	d := minWait << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if when, err := http.ParseTime(v); err == nil {
		d := when.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

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

// stallBody fails a Read that gets no data for timeout with ErrStalled, by
// cancelling the request's context. Only time spent inside Read counts: a
// consumer that is slow to read (backpressure) is not a stall.
type stallBody struct {
	io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	timer   *time.Timer // cancels with ErrStalled; armed only during a Read
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrStalled) {
		err = fmt.Errorf("no data for %s: %w", b.timeout, ErrStalled)
	}
	return n, err
}

// sendBody is a request body that fails its request with ErrStalled when
// the server takes nothing for timeout: the clock runs from the return of
// one Read to the start of the next (time the transport spends writing
// what it read), never while Read itself waits for data to send (a slow
// source), and stops once the body is read to its end or the round trip
// is over (the wait for the answer has ResponseHeaderTimeout).
type sendBody struct {
	io.ReadCloser
	timeout time.Duration
	timer   *time.Timer // cancels with ErrStalled

	mu   sync.Mutex
	done bool
}

func (b *sendBody) Read(p []byte) (int, error) {
	b.timer.Stop()
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		b.mu.Lock()
		if !b.done {
			b.timer.Reset(b.timeout)
		}
		b.mu.Unlock()
	}
	return n, err
}

// finish stops the clock for good (net/http may read the body after the
// round trip returned).
func (b *sendBody) finish() {
	b.mu.Lock()
	b.done = true
	b.timer.Stop()
	b.mu.Unlock()
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
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

// guardSet tracks the guarded bodies of one request's attempts.
type guardSet struct {
	mu sync.Mutex
	gs []*guardedReader
}

func (s *guardSet) add(r io.Reader) io.Reader {
	g := &guardedReader{r: r}
	s.mu.Lock()
	s.gs = append(s.gs, g)
	s.mu.Unlock()
	if l, ok := r.(interface{ Len() int }); ok {
		// Keep the length visible, so the request gets a Content-Length.
		return &guardedLenReader{guardedReader: g, l: l}
	}
	return g
}

// closeAll waits for reads in progress and refuses later ones.
func (s *guardSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gs {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
	}
}

// guardedReader reads r until closed, then fails.
type guardedReader struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

var errBodyDone = errors.New("request body read after its request ended")

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errBodyDone
	}
	return g.r.Read(p)
}

// guardedLenReader is a guardedReader whose reader knows its length.
type guardedLenReader struct {
	*guardedReader
	l interface{ Len() int }
}

func (g *guardedLenReader) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.l.Len()
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// systemRoots is the system pool plus what SSL_CERT_FILE and SSL_CERT_DIR
// name.
func systemRoots() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	var files []string
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		for _, dir := range filepath.SplitList(d) {
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() {
					files = append(files, filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read trusted certificates %s: %w", f, err)
		}
		pool.AppendCertsFromPEM(b)
	}
	return pool, nil
}
