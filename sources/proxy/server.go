package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/keylock"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/sources/receiver"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

const (
	// DefaultConcurrency is how many images run at once.
	DefaultConcurrency = 4
	// DefaultShutdownTimeout bounds the wait for work in progress on
	// shutdown, as the original's 300 s.
	DefaultShutdownTimeout = 300 * time.Second
	// DefaultUploadIdle is how long a blob upload may sit unused before
	// the next new upload drops it (a client that gave up).
	DefaultUploadIdle = time.Hour
	maxManifest       = 4 << 20
)

// Options configure a Server.
type Options struct {
	// Transport is the process's one HTTP transport.
	Transport *transport.Transport
	// Downstream is HOST[/PREFIX]: images go to HOST/PREFIX/NAME:TAG.
	Downstream string
	// DownstreamRegistry holds insecure and the credentials for it.
	DownstreamRegistry transport.RegistryOptions
	// Upstream is the HOST images are pulled from; "" is push-only mode.
	Upstream string
	// UpstreamRegistry holds insecure and the credentials for it.
	UpstreamRegistry transport.RegistryOptions
	// Concurrency is how many images run at once (default 4).
	Concurrency int
	// TempDir holds received blobs and pulled layers ("" = the system's).
	TempDir string
	// Filters builds the filter stages for one image (nil = none).
	Filters func(img stage.Image) ([]stage.Stage, error)
	// Sink is the template of the downstream sink's options (compression,
	// workers, layer cache, filters hash, pushed-blob record); Host, Repo,
	// Tag and Registry are set per image.
	Sink registrysink.Options
	// Source is the template of the upstream source's options (platform,
	// workers); Host, Repo, Tag, Registry and TempDir are set per image.
	Source registrysrc.Options
	// Inflate gunzips pushed layers (pulled ones: Source.Inflate); nil: Go's.
	Inflate *inflate.Inflater
	// Engine tunes each run.
	Engine stage.Options
	// ShutdownTimeout bounds the wait for work in progress (default 300 s).
	ShutdownTimeout time.Duration
	// UploadIdle is how long an unfinished upload may sit unused before it
	// is dropped (default DefaultUploadIdle).
	UploadIdle time.Duration
}

// Stats counts the images the proxy handled.
type Stats struct {
	Pushed, PushFailed        int64
	Pulled, Hits, Misses      int64
	PullFailed, UpstreamPulls int64
}

// cached is a manifest pushed into the proxy whose downstream copy differs
// (a filter changed the image): the proxy serves what was pushed, and a
// DELETE by its digest deletes the downstream's.
type cached struct {
	body      []byte
	mediaType string
	digest    digest.Digest
	down      digest.Digest
}

// Server is the proxy. See the package documentation.
type Server struct {
	opts   Options
	store  *store             // the blobs pushed here
	recv   *receiver.Receiver // the push side of the API, into store
	down   *transport.Registry
	host   string // downstream host
	prefix string // downstream path prefix, or ""
	sem    chan struct{}
	active sync.WaitGroup // requests in ServeHTTP

	mu        sync.Mutex
	manifests map[string]cached // "name@ref" → a pushed manifest the filters changed
	locks     keylock.Locks     // "name:ref": one pull in progress

	pushed, pushFailed, hits, misses, pullFailed atomic.Int64
}

// New makes a server; it serves nothing until Serve.
func New(opts Options) (*Server, error) {
	if opts.Transport == nil {
		return nil, errors.New("proxy: no transport")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.UploadIdle <= 0 {
		opts.UploadIdle = DefaultUploadIdle
	}
	if opts.Filters == nil {
		opts.Filters = func(stage.Image) ([]stage.Stage, error) { return nil, nil }
	}
	host, prefix, _ := strings.Cut(opts.Downstream, "/")
	if host == "" {
		return nil, fmt.Errorf("proxy: downstream %q: expected HOST[/PREFIX]", opts.Downstream)
	}
	s := &Server{
		opts: opts, store: newStore(opts.TempDir),
		down: opts.Transport.Registry(host, opts.DownstreamRegistry),
		host: host, prefix: strings.Trim(prefix, "/"),
		sem:       make(chan struct{}, opts.Concurrency),
		manifests: map[string]cached{},
	}
	s.recv = receiver.New(receiver.Options{
		Ingest:      s.store,
		Manifest:    s.manifest,
		BlobMissing: s.forwardBlob,
		DeleteBlob:  s.deleteBlob,
		UploadIdle:  opts.UploadIdle,
		KeepCut:     true,
	})
	return s, nil
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	h, m := s.hits.Load(), s.misses.Load()
	return Stats{Pushed: s.pushed.Load(), PushFailed: s.pushFailed.Load(), Pulled: h + m, Hits: h, Misses: m,
		PullFailed: s.pullFailed.Load(), UpstreamPulls: m}
}

// Serve answers on l until ctx is cancelled, then stops taking requests,
// waits up to ShutdownTimeout for those in progress (past it, their runs
// are cancelled), logs the counters and removes the received blobs.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	lg := zerolog.Ctx(ctx)
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	srv := &http.Server{
		Handler:           s,
		BaseContext:       func(net.Listener) context.Context { return work },
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(debugWriter{lg}, "", 0),
	}
	errc := make(chan error, 1)
	p := pool.New()
	p.Go(func() { errc <- srv.Serve(l) })
	lg.Info().Str("listen", l.Addr().String()).Str("downstream", s.opts.Downstream).Str("upstream", s.opts.Upstream).
		Int("concurrency", s.opts.Concurrency).Msg("Proxy listening")
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil {
		lg.Warn().Err(err).Msg("Work in progress abandoned")
		cancelWork()
		_ = srv.Close()
	}
	cancel()
	p.Wait()
	s.active.Wait()
	st := s.Stats()
	// The original's line, as text; the counts as fields.
	lg.Info().Int64("pushed", st.Pushed).Int64("push_failed", st.PushFailed).Int64("pulled", st.Pulled).
		Int64("cache_hits", st.Hits).Int64("cache_misses", st.Misses).
		Str("text", fmt.Sprintf("Proxy stopped. Pushed %d images (%d failed). Pulled %d images (%d cache hits, %d misses).",
			st.Pushed, st.PushFailed, st.Pulled, st.Hits, st.Misses)).Msg("Proxy stopped")
	cerr := s.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("proxy: serve on %s: %w", l.Addr(), serveErr)
	}
	return cerr
}

// Close ends the uploads in progress and removes the received blobs (for
// a Server used only as a handler). Requests after Close fail.
func (s *Server) Close() error { return errors.Join(s.recv.Close(), s.store.Close()) }

// debugWriter sends the HTTP server's own messages to the debug log.
type debugWriter struct{ l *zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "proxy").Str("text", strings.TrimSpace(string(p))).Msg("HTTP server")
	return len(p), nil
}

// downRepo is the downstream repository of name.
func (s *Server) downRepo(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// The paths the proxy answers itself; the receiver answers the rest.
var (
	tagsRE      = regexp.MustCompile(`^/v2/(` + receiver.NamePattern + `)/tags/list$`)
	referrersRE = regexp.MustCompile(`^/v2/(` + receiver.NamePattern + `)/referrers/([^/]+)$`)
)

// ServeHTTP routes a registry request: the catalog, tags lists and
// referrers here, the rest (uploads, blobs, manifests) by the receiver.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Done()
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := r.URL.Path
	var m []string
	match := func(re *regexp.Regexp) bool { m = re.FindStringSubmatch(p); return m != nil }
	switch {
	case p == "/v2/_catalog":
		if receiver.Allow(w, r, http.MethodGet) {
			s.catalog(w, r)
		}
	case match(tagsRE):
		if receiver.Allow(w, r, http.MethodGet) {
			s.tagsList(w, r, m[1])
		}
	case match(referrersRE):
		if _, err := digest.Parse(m[2]); err != nil {
			receiver.WriteError(w, http.StatusBadRequest, transport.CodeDigestInvalid, fmt.Sprintf("invalid digest %q", m[2]))
			return
		}
		if receiver.Allow(w, r, http.MethodGet) {
			s.forward(w, r, "/v2/"+s.downRepo(m[1])+"/referrers/"+m[2], m[1])
		}
	default:
		s.recv.ServeHTTP(w, r)
	}
}

// manifest answers a request for a manifest (ref checked by the receiver).
func (s *Server) manifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	switch r.Method {
	case http.MethodPut:
		s.putManifest(w, r, name, ref)
	case http.MethodGet, http.MethodHead:
		s.getManifest(w, r, name, ref)
	case http.MethodDelete:
		s.deleteManifest(w, r, name, ref)
	default:
		receiver.Allow(w, r, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete)
	}
}

// acquire takes a slot of the image semaphore.
func (s *Server) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run moves one image from src through the filters into the downstream.
func (s *Server) run(ctx context.Context, src stage.Source, stages []stage.Stage, name, tag string) (digest.Digest, error) {
	so := s.opts.Sink
	so.Host, so.Repo, so.Tag, so.Registry = s.host, s.downRepo(name), tag, s.opts.DownstreamRegistry
	sink := registrysink.New(s.opts.Transport, so)
	if _, err := stage.Run(ctx, src, stages, sink, s.opts.Engine); err != nil {
		return "", err
	}
	return sink.Digest(), nil
}
