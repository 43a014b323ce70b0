package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
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

	// roots are the trusted roots, loaded in the background from New;
	// verified handshakes wait for them (roots.go).
	roots            *rootsLoader
	handshakeTimeout time.Duration
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
	// The CA file is read and checked here, the roots loaded in the
	// background (see roots.go).
	var caPEM []byte
	if opts.CAFile != "" {
		b, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		caPEM = b
	}
	t := &Transport{opts: opts, registries: map[string]*hostAuth{}, gates: map[string]chan struct{}{},
		roots: loadRoots(opts.RootCAs, caPEM), handshakeTimeout: tlsHandshakeTimeout}
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
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
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
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
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
	if proxyInEnvironment() {
		roots, err := t.roots.get(context.Background())
		if err != nil {
			return nil, err
		}
		t.rt.TLSClientConfig.RootCAs = roots
		t.bulkRT.TLSClientConfig.RootCAs = roots
	} else {
		// Each its own copy of the config: net/http edits the one a
		// Transport holds (NextProtos) at its first request.
		t.rt.DialTLSContext = t.dialTLS(dial, tlsConfig.Clone(), []string{"h2", "http/1.1"})
		t.bulkRT.DialTLSContext = t.dialTLS(dial, tlsConfig.Clone(), []string{"http/1.1"})
	}
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

// Close closes the idle connections of the pool, and waits for the
// loading of the trusted roots New started.
func (t *Transport) Close() {
	t.roots.wait()
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
