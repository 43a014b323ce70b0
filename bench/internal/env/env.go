package env

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // the storage driver
	digest "github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"

	"github.com/occystrap/occystrap/bench/internal/corpus"
)

var quietOnce sync.Once

// quiet silences the registry's logrus logging.
func quiet() {
	quietOnce.Do(func() {
		logrus.SetLevel(logrus.ErrorLevel)
		logrus.SetOutput(io.Discard)
	})
}

// Counters are server-side totals.
type Counters struct {
	Requests   int64 `json:"requests"`
	Conns      int64 `json:"connections"`
	Handshakes int64 `json:"tls_handshakes"`
	BytesIn    int64 `json:"bytes_in"`
	BytesOut   int64 `json:"bytes_out"`
}

// Sub is c - o.
func (c Counters) Sub(o Counters) Counters {
	return Counters{c.Requests - o.Requests, c.Conns - o.Conns, c.Handshakes - o.Handshakes, c.BytesIn - o.BytesIn, c.BytesOut - o.BytesOut}
}

// Add is c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{c.Requests + o.Requests, c.Conns + o.Conns, c.Handshakes + o.Handshakes, c.BytesIn + o.BytesIn, c.BytesOut + o.BytesOut}
}

type counters struct {
	requests, conns, handshakes, in, out atomic.Int64
}

func (c *counters) snapshot() Counters {
	return Counters{c.requests.Load(), c.conns.Load(), c.handshakes.Load(), c.in.Load(), c.out.Load()}
}

// Net is the network shape every proxy gets.
type Net struct {
	// Latency is added each way.
	Latency time.Duration
	// BandwidthKBps limits each connection each way (0 = none).
	BandwidthKBps int64
}

// Server is one registry (with the Quay API when it is the source) behind
// its proxy.
type Server struct {
	// Host is the proxy's 127.0.0.1:PORT, what clients use.
	Host string
	// Direct is the registry's own address, without the proxy.
	Direct string

	srv   *httptest.Server
	proxy *toxiproxy.Proxy
	c     counters
	close func()
}

// Counters are this server's totals so far.
func (s *Server) Counters() Counters { return s.c.snapshot() }

// Close stops the proxy, the server and the registry app.
func (s *Server) Close() {
	s.proxy.Stop()
	s.srv.Close()
	s.close()
}

// Env is the whole set of servers.
type Env struct {
	// Source holds the corpus and serves the Quay API.
	Source *Server
	// CAFile is a PEM file trusting every server (for SSL_CERT_FILE).
	CAFile string

	net     Net
	tmp     string
	api     *toxiproxy.ApiServer
	mu      sync.Mutex
	servers []*Server
}

// Start starts the source registry, pushes c into it and serves the Quay API
// for c's namespace on it. Temporary files go under tmp.
func Start(ctx context.Context, tmp string, c *corpus.Corpus, n Net) (*Env, error) {
	quiet()
	e := &Env{net: n, tmp: tmp}
	e.api = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	src, app, err := e.newServer(ctx, "source", c)
	if err != nil {
		return nil, err
	}
	e.Source = src
	if err := push(ctx, app, src.Host, c); err != nil {
		e.Close()
		return nil, err
	}
	// Every httptest TLS server shares one certificate; trust it.
	crt := src.srv.Certificate()
	e.CAFile = tmp + "/ca.pem"
	if err := os.WriteFile(e.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw}), 0o644); err != nil {
		e.Close()
		return nil, fmt.Errorf("env: %w", err)
	}
	return e, nil
}

// NewDest starts an empty registry (a push destination); Close it after use.
func (e *Env) NewDest(ctx context.Context) (*Server, error) {
	s, _, err := e.newServer(ctx, "dest", nil)
	return s, err
}

// Close stops every server.
func (e *Env) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.servers {
		s.Close()
	}
	e.servers = nil
}

var seq atomic.Int64

func (e *Env) newServer(ctx context.Context, name string, c *corpus.Corpus) (*Server, http.Handler, error) {
	root, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return nil, nil, fmt.Errorf("env: %w", err)
	}
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": root}}
	cfg.Storage["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}
	cfg.HTTP.Secret = "bench"
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	app := handlers.NewApp(actx, cfg)
	s := &Server{}
	var h http.Handler = app
	if c != nil {
		h = quayAPI(c, app)
	}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.c.requests.Add(1)
		h.ServeHTTP(w, r)
	})
	s.srv = httptest.NewUnstartedServer(counted)
	s.srv.Listener = &countListener{Listener: s.srv.Listener, c: &s.c}
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	s.srv.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.c.handshakes.Add(1)
		return nil, nil
	}
	s.Direct = strings.TrimPrefix(s.srv.URL, "https://")
	s.proxy = toxiproxy.NewProxy(e.api, fmt.Sprintf("%s-%d", name, seq.Add(1)), "127.0.0.1:0", s.Direct)
	if err := s.proxy.Start(); err != nil {
		s.srv.Close()
		cancel()
		return nil, nil, fmt.Errorf("env: start proxy: %w", err)
	}
	s.Host = s.proxy.Listen
	s.close = func() { cancel(); _ = os.RemoveAll(root) }
	if err := e.addToxics(s.proxy); err != nil {
		s.Close()
		return nil, nil, err
	}
	e.mu.Lock()
	e.servers = append(e.servers, s)
	e.mu.Unlock()
	return s, app, nil
}

func (e *Env) addToxics(p *toxiproxy.Proxy) error {
	var ts []string
	if ms := e.net.Latency.Milliseconds(); ms > 0 {
		for _, dir := range []string{"upstream", "downstream"} {
			ts = append(ts, fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d}}`, dir, dir, ms))
		}
	}
	if e.net.BandwidthKBps > 0 {
		for _, dir := range []string{"upstream", "downstream"} {
			ts = append(ts, fmt.Sprintf(`{"name":"bw_%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`, dir, dir, e.net.BandwidthKBps))
		}
	}
	for _, t := range ts {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
			return fmt.Errorf("env: toxic %s: %w", t, err)
		}
	}
	return nil
}

// countListener counts accepted connections and the bytes they carry.
type countListener struct {
	net.Listener
	c *counters
}

func (l *countListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.conns.Add(1)
	return &countConn{Conn: conn, c: l.c}, nil
}

type countConn struct {
	net.Conn
	c *counters
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.out.Add(int64(n))
	return n, err
}

// push stores the corpus in the app, in-process (no network, not counted).
func push(ctx context.Context, app http.Handler, host string, c *corpus.Corpus) error {
	for _, im := range c.Images {
		blobs := []string{im.Config.String()}
		for _, l := range im.Layers {
			blobs = append(blobs, l.Digest.String())
		}
		for _, d := range blobs {
			if err := pushBlob(ctx, app, host, im.Repo, c, d); err != nil {
				return err
			}
		}
		mb, err := c.ReadBlob(im.Manifest)
		if err != nil {
			return err
		}
		rec := serve(ctx, app, host, http.MethodPut, "/v2/"+im.Repo+"/manifests/"+im.Tag, corpus.MediaTypeManifest, bytes.NewReader(mb), int64(len(mb)))
		if rec.Code != http.StatusCreated {
			return fmt.Errorf("env: put manifest %s: %d %s", im.Repo, rec.Code, rec.Body.String())
		}
	}
	return nil
}

func pushBlob(ctx context.Context, app http.Handler, host, repo string, c *corpus.Corpus, d string) error {
	rec := serve(ctx, app, host, http.MethodHead, "/v2/"+repo+"/blobs/"+d, "", nil, 0)
	if rec.Code == http.StatusOK {
		return nil
	}
	rec = serve(ctx, app, host, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil, 0)
	if rec.Code != http.StatusAccepted {
		return fmt.Errorf("env: start upload to %s: %d %s", repo, rec.Code, rec.Body.String())
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		return err
	}
	f, err := os.Open(c.Blob(digest.Digest(d)))
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d)
	rec = serve(ctx, app, host, http.MethodPut, loc.Path+"?"+q.Encode(), "application/octet-stream", f, fi.Size())
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("env: upload %s to %s: %d %s", d, repo, rec.Code, rec.Body.String())
	}
	return nil
}

func serve(ctx context.Context, app http.Handler, host, method, target, ctype string, body io.Reader, n int64) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, target, body)
	req.Host = host
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if body != nil {
		req.ContentLength = n
		req.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, req)
	return rec
}

// quayAPI serves the two Quay endpoints occystrap's quay:// uses (the
// repository list and the tag check) for c's namespace, and passes
// everything else to the registry.
func quayAPI(c *corpus.Corpus, next http.Handler) http.Handler {
	type repo struct {
		Namespace    string `json:"namespace"`
		Name         string `json:"name"`
		IsPublic     bool   `json:"is_public"`
		LastModified int64  `json:"last_modified"`
	}
	repos := map[string]bool{}
	var list []repo
	for _, im := range c.Images {
		name := strings.TrimPrefix(im.Repo, corpus.Namespace+"/")
		repos[name] = true
		list = append(list, repo{Namespace: corpus.Namespace, Name: name, IsPublic: true, LastModified: 1712145600})
	}
	const page = 20
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/api/v1/repository":
			if r.URL.Query().Get("namespace") != corpus.Namespace {
				writeJSON(w, map[string]any{"repositories": []repo{}})
				return
			}
			start, _ := strconv.Atoi(r.URL.Query().Get("next_page"))
			end := min(start+page, len(list))
			out := map[string]any{"repositories": list[start:end]}
			if end < len(list) {
				out["next_page"] = strconv.Itoa(end)
			}
			writeJSON(w, out)
		case strings.HasPrefix(p, "/api/v1/repository/"+corpus.Namespace+"/") && strings.HasSuffix(p, "/tag/"):
			name := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v1/repository/"+corpus.Namespace+"/"), "/tag/")
			tag := r.URL.Query().Get("specificTag")
			if !repos[name] {
				http.Error(w, `{"error_message":"Not Found"}`, http.StatusNotFound)
				return
			}
			tags := []map[string]any{}
			if tag == corpus.Tag {
				tags = append(tags, map[string]any{"name": tag, "start_ts": 1712145600, "reversion": false})
			}
			writeJSON(w, map[string]any{"tags": tags, "page": 1, "has_additional": false})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to the server directly (not through the proxy), trusting it.
func (s *Server) Client() *http.Client { return s.srv.Client() }
