package env

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	digest "github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/bench/internal/corpus"
	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

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

	reg   *testregistry.Registry
	proxy *toxiproxy.Proxy
	root  string
}

// Counters are this server's totals so far.
func (s *Server) Counters() Counters {
	c := s.reg.Counters()
	return Counters{c.Requests, c.Conns, c.Handshakes, c.BytesIn, c.BytesOut}
}

// Close stops the proxy, the registry and removes its storage.
func (s *Server) Close() {
	s.proxy.Stop()
	s.reg.Close()
	_ = os.RemoveAll(s.root)
}

// Client talks to the server directly (not through the proxy), trusting it.
func (s *Server) Client() *http.Client { return s.reg.Client() }

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

// quayPageSize is how many repositories a Quay listing page holds.
const quayPageSize = 20

// corpusPushed is the push time the Quay API gives every corpus image.
var corpusPushed = time.Unix(1712145600, 0).UTC()

// Start starts the source registry, pushes c into it and serves the Quay API
// for c's namespace on it. Temporary files go under tmp.
func Start(ctx context.Context, tmp string, c *corpus.Corpus, n Net) (*Env, error) {
	e := &Env{net: n, tmp: tmp}
	e.api = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	q := testquay.New(testquay.Options{PageSize: quayPageSize})
	src, err := e.newServer("source", q.Wrap)
	if err != nil {
		return nil, err
	}
	e.Source = src
	if err := push(ctx, src.reg, q, c); err != nil {
		e.Close()
		return nil, err
	}
	// Every httptest TLS server shares one certificate; trust it.
	crt := src.reg.Certificate()
	e.CAFile = tmp + "/ca.pem"
	if err := os.WriteFile(e.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw}), 0o644); err != nil {
		e.Close()
		return nil, fmt.Errorf("env: %w", err)
	}
	return e, nil
}

// NewDest starts an empty registry (a push destination); Close it after use.
func (e *Env) NewDest(context.Context) (*Server, error) {
	return e.newServer("dest", nil)
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

// newServer starts a registry storing blobs on disk under the temporary
// directory, with wrap (if any) in front of it, behind a proxy.
func (e *Env) newServer(name string, wrap func(http.Handler) http.Handler) (*Server, error) {
	root, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	reg, err := testregistry.New(testregistry.Options{RootDirectory: root, Wrap: wrap})
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("env: %w", err)
	}
	s := &Server{reg: reg, root: root, Direct: reg.Host}
	s.proxy = toxiproxy.NewProxy(e.api, fmt.Sprintf("%s-%d", name, seq.Add(1)), "127.0.0.1:0", s.Direct)
	if err := s.proxy.Start(); err != nil {
		reg.Close()
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("env: start proxy: %w", err)
	}
	s.Host = s.proxy.Listen
	if err := e.addToxics(s.proxy); err != nil {
		s.Close()
		return nil, err
	}
	e.mu.Lock()
	e.servers = append(e.servers, s)
	e.mu.Unlock()
	return s, nil
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

// push stores the corpus in the registry, in-process (no network, not
// counted), and registers every image with the Quay API.
func push(ctx context.Context, reg *testregistry.Registry, q *testquay.Server, c *corpus.Corpus) error {
	for _, im := range c.Images {
		blobs := []string{im.Config.String()}
		for _, l := range im.Layers {
			blobs = append(blobs, l.Digest.String())
		}
		for _, d := range blobs {
			if err := pushBlob(ctx, reg, im.Repo, c, d); err != nil {
				return err
			}
		}
		mb, err := c.ReadBlob(im.Manifest)
		if err != nil {
			return err
		}
		if err := reg.PushManifest(ctx, im.Repo, im.Tag, corpus.MediaTypeManifest, mb); err != nil {
			return fmt.Errorf("env: %w", err)
		}
		pushed := corpusPushed
		q.AddRepo(testquay.Repo{
			Namespace:    corpus.Namespace,
			Name:         strings.TrimPrefix(im.Repo, corpus.Namespace+"/"),
			LastModified: &pushed,
			Tags:         []testquay.Tag{{Name: im.Tag, ManifestDigest: im.Manifest, StartTS: corpusPushed}},
		})
	}
	return nil
}

func pushBlob(ctx context.Context, reg *testregistry.Registry, repo string, c *corpus.Corpus, d string) error {
	f, err := os.Open(c.Blob(digest.Digest(d)))
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	if err := reg.PushBlobFrom(ctx, repo, digest.Digest(d), f, fi.Size()); err != nil {
		return fmt.Errorf("env: %w", err)
	}
	return nil
}
