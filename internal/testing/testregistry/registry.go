package testregistry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // a storage driver
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"   // the default storage driver
	"github.com/sirupsen/logrus"
)

var quietOnce sync.Once

// quiet silences the registry's own logging (it logs through logrus's
// standard logger, configured by the registry command, not by NewApp).
func quiet() {
	quietOnce.Do(func() {
		logrus.SetLevel(logrus.ErrorLevel)
		logrus.SetOutput(io.Discard)
	})
}

// Auth selects the authentication in front of the registry.
type Auth int

const (
	// AuthNone lets everyone pull and push.
	AuthNone Auth = iota
	// AuthToken answers 401 with a Bearer challenge; tokens come from
	// /token on the same server (Basic credentials required there when
	// Options.Username is set).
	AuthToken
	// AuthBasic answers 401 with a Basic challenge.
	AuthBasic
)

// Options configure Start.
type Options struct {
	// Plain serves HTTP/1.1 without TLS (for --insecure).
	Plain bool
	Auth  Auth
	// Username and Password are the credentials the gate wants.
	Username, Password string
	// TokenTTL is how long a token stays valid on the server (default 5 min);
	// the token response always says 300 s, so a shorter TTL makes clients
	// hold expired tokens.
	TokenTTL time.Duration
	// Wrap, if set, wraps the whole server's handler (gate included), e.g.
	// with an Injector or Latency; the blob store's too.
	Wrap func(http.Handler) http.Handler
	// BlobStore starts a second server (another host) that serves the
	// registry's GETs without authentication, as a redirect target.
	BlobStore bool
	// RootDirectory, when set, stores blobs on disk there (the filesystem
	// driver) instead of in memory, for tests that push large blobs.
	RootDirectory string
	// Delete lets clients DELETE manifests, tags and blobs (off by
	// default, as in the registry's own configuration: 405 UNSUPPORTED).
	Delete bool
}

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT, URL is scheme://Host.
	Host string
	URL  string
	// BlobStoreURL is the second server's URL (Options.BlobStore).
	BlobStoreURL string

	srv      *httptest.Server
	store    *httptest.Server
	app      http.Handler
	cancel   context.CancelFunc
	newConns atomic.Int64
	// Counters.
	requests, conns, handshakes, bytesIn, bytesOut atomic.Int64
	tokens                                         atomic.Int64
	// storeAuth counts requests the blob store got with an Authorization
	// header (a leak).
	storeAuth atomic.Int64
	storeReqs atomic.Int64
	// credTokens counts token requests that carried credentials.
	credTokens atomic.Int64

	mu     sync.Mutex
	issued map[string]time.Time
	opts   Options
}

// Start runs a registry for the duration of the test: New, with Close
// registered as a cleanup; it fails the test when New fails.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// New runs a registry until Close, for callers without a testing.TB (the
// benchmark harness).
func New(opts Options) (*Registry, error) {
	quiet()
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	if opts.RootDirectory != "" {
		cfg.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": opts.RootDirectory}}
	}
	cfg.Storage["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}
	if opts.Delete {
		cfg.Storage["delete"] = configuration.Parameters{"enabled": true}
	}
	cfg.Catalog.MaxEntries = 1000 // the configuration file's default (0 lists nothing)
	cfg.HTTP.Secret = "testregistry"
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testregistry: listen: %w", err)
	}
	var storeLn net.Listener
	if opts.BlobStore {
		if storeLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			ln.Close()
			return nil, fmt.Errorf("testregistry: listen: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	r := &Registry{app: app, issued: map[string]time.Time{}, opts: opts, cancel: cancel}

	var h http.Handler = app
	switch opts.Auth {
	case AuthToken, AuthBasic:
		h = r.gate(app)
	}
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		inner.ServeHTTP(w, req)
	})
	r.srv = &httptest.Server{Listener: &countListener{Listener: ln, r: r}, Config: &http.Server{Handler: h}}
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.newConns.Add(1)
		}
	}
	if opts.Plain {
		r.srv.Start()
	} else {
		r.srv.EnableHTTP2 = true
		// StartTLS completes this configuration (certificate, ALPN).
		r.srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.handshakes.Add(1)
			return nil, nil
		}}
		r.srv.StartTLS()
	}
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(strings.TrimPrefix(r.URL, "https://"), "http://")
	if opts.BlobStore {
		var sh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.storeReqs.Add(1)
			if req.Header.Get("Authorization") != "" {
				r.storeAuth.Add(1)
			}
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				http.Error(w, "read only", http.StatusMethodNotAllowed)
				return
			}
			app.ServeHTTP(w, req)
		})
		if opts.Wrap != nil {
			sh = opts.Wrap(sh)
		}
		r.store = &httptest.Server{Listener: storeLn, Config: &http.Server{Handler: sh}}
		if opts.Plain {
			r.store.Start()
		} else {
			r.store.EnableHTTP2 = true
			r.store.TLS = r.srv.TLS.Clone()
			r.store.TLS.GetConfigForClient = nil // count the registry's handshakes only
			r.store.StartTLS()
		}
		r.BlobStoreURL = r.store.URL
	}
	return r, nil
}

// Close stops the servers and the registry app.
func (r *Registry) Close() {
	r.srv.Close()
	if r.store != nil {
		r.store.Close()
	}
	r.cancel()
}

// Client is an HTTP client that trusts the registry and speaks HTTP/2 to
// it (plain HTTP for Plain).
func (r *Registry) Client() *http.Client { return r.srv.Client() }

// Counters are server-side totals of the registry's own server (not the
// blob store's): requests, accepted connections, TLS handshakes, and bytes
// read and written on the wire (TLS included).
type Counters struct {
	Requests, Conns, Handshakes, BytesIn, BytesOut int64
}

// Counters are the totals so far.
func (r *Registry) Counters() Counters {
	return Counters{r.requests.Load(), r.conns.Load(), r.handshakes.Load(), r.bytesIn.Load(), r.bytesOut.Load()}
}

// countListener counts accepted connections and the bytes they carry.
type countListener struct {
	net.Listener
	r *Registry
}

func (l *countListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.r.conns.Add(1)
	return &countConn{Conn: conn, r: l.r}, nil
}

type countConn struct {
	net.Conn
	r *Registry
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.bytesIn.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.r.bytesOut.Add(int64(n))
	return n, err
}

// RootCAs trusts the registry's (and the blob store's) certificates.
func (r *Registry) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	if r.srv.Certificate() != nil {
		pool.AddCert(r.srv.Certificate())
	}
	if r.store != nil && r.store.Certificate() != nil {
		pool.AddCert(r.store.Certificate())
	}
	return pool
}

// Certificate is the server's certificate (nil for Plain).
func (r *Registry) Certificate() *x509.Certificate { return r.srv.Certificate() }

// NewConns counts connections the registry's server accepted.
func (r *Registry) NewConns() int64 { return r.newConns.Load() }

// ExpireTokens makes every token issued so far invalid, as if it had
// expired, while clients still hold it.
func (r *Registry) ExpireTokens() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.issued {
		r.issued[k] = time.Time{}
	}
}

// CredentialedTokenRequests counts requests to the token endpoint that
// carried an Authorization header (credentials), whether or not a token was
// issued.
func (r *Registry) CredentialedTokenRequests() int64 { return r.credTokens.Load() }

// TokensIssued counts tokens the token endpoint gave out.
func (r *Registry) TokensIssued() int64 { return r.tokens.Load() }

// BlobStoreRequests counts requests to the blob store, and how many of them
// carried an Authorization header.
func (r *Registry) BlobStoreRequests() (total, withAuth int64) {
	return r.storeReqs.Load(), r.storeAuth.Load()
}

// Handler is the registry app without gate or wrappers (for pushes).
func (r *Registry) Handler() http.Handler { return r.app }

var repoInPath = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags)/`)

// gate authenticates requests before the app sees them.
func (r *Registry) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" && r.opts.Auth == AuthToken {
			r.serveToken(w, req)
			return
		}
		repo := ""
		if m := repoInPath.FindStringSubmatch(req.URL.Path); m != nil {
			repo = m[1]
		}
		auth := req.Header.Get("Authorization")
		switch r.opts.Auth {
		case AuthBasic:
			u, p, ok := req.BasicAuth()
			if ok && u == r.opts.Username && p == r.opts.Password {
				next.ServeHTTP(w, req)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="testregistry"`)
		case AuthToken:
			tok, isBearer := strings.CutPrefix(auth, "Bearer ")
			if isBearer && r.validToken(tok, repo) {
				next.ServeHTTP(w, req)
				return
			}
			// Parameters deliberately not in the usual order.
			ch := fmt.Sprintf(`Bearer service="testregistry",realm="%s/token"`, r.URL)
			if repo != "" {
				ch += fmt.Sprintf(`,scope="repository:%s:pull"`, repo)
			}
			w.Header().Set("WWW-Authenticate", ch)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	})
}

func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "" {
		r.credTokens.Add(1)
	}
	if r.opts.Username != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.opts.Username || p != r.opts.Password {
			http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
			return
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	// The token names its scopes so validToken can check them.
	tok := hex.EncodeToString(b[:]) + "." + strings.Join(req.URL.Query()["scope"], "|")
	r.mu.Lock()
	r.issued[tok] = time.Now().Add(r.opts.TokenTTL)
	r.mu.Unlock()
	r.tokens.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

func (r *Registry) validToken(tok, repo string) bool {
	r.mu.Lock()
	exp, ok := r.issued[tok]
	r.mu.Unlock()
	if !ok || time.Now().After(exp) {
		return false
	}
	if repo == "" {
		return true
	}
	_, scopes, _ := strings.Cut(tok, ".")
	for _, s := range strings.Split(scopes, "|") {
		if strings.HasPrefix(s, "repository:"+repo+":") {
			return true
		}
	}
	return false
}
