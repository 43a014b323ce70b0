package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/keylock"
	"github.com/occystrap/occystrap/sinks/registry"
	sourcereg "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

const (
	// DefaultConcurrency is how many images run at once.
	DefaultConcurrency = 4
	// DefaultShutdownTimeout bounds the wait for work in progress on
	// shutdown, as the original's 300 s.
	DefaultShutdownTimeout = 300 * time.Second
	maxManifest            = 4 << 20

	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// accept is what the proxy asks the downstream for: single-platform
// manifests only.
var accept = []string{mediaTypeDockerManifest, v1.MediaTypeImageManifest}

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
	Sink registry.Options
	// Source is the template of the upstream source's options (platform,
	// workers); Host, Repo, Tag, Registry and TempDir are set per image.
	Source sourcereg.Options
	// Inflate gunzips pushed layers (pulled ones: Source.Inflate); nil: Go's.
	Inflate *inflate.Inflater
	// Engine tunes each run.
	Engine stage.Options
	// ShutdownTimeout bounds the wait for work in progress (default 300 s).
	ShutdownTimeout time.Duration
}

// Stats counts the images the proxy handled.
type Stats struct {
	Pushed, PushFailed        int64
	Pulled, Hits, Misses      int64
	PullFailed, UpstreamPulls int64
}

// cached is a manifest pushed into the proxy (push-only mode).
type cached struct {
	body      []byte
	mediaType string
	digest    digest.Digest
}

// Server is the proxy. See the package documentation.
type Server struct {
	opts   Options
	store  *store
	down   *transport.Registry
	host   string // downstream host
	prefix string // downstream path prefix, or ""
	sem    chan struct{}
	active sync.WaitGroup // requests in ServeHTTP

	mu        sync.Mutex
	manifests map[string]cached // "name@ref" → manifest (push-only)
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
	if opts.Filters == nil {
		opts.Filters = func(stage.Image) ([]stage.Stage, error) { return nil, nil }
	}
	host, prefix, _ := strings.Cut(opts.Downstream, "/")
	if host == "" {
		return nil, fmt.Errorf("proxy: downstream %q: expected HOST[/PREFIX]", opts.Downstream)
	}
	return &Server{
		opts: opts, store: newStore(opts.TempDir),
		down: opts.Transport.Registry(host, opts.DownstreamRegistry),
		host: host, prefix: strings.Trim(prefix, "/"),
		sem:       make(chan struct{}, opts.Concurrency),
		manifests: map[string]cached{},
	}, nil
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
	lg.Info().Msgf("Proxy stopped. Pushed %d images (%d failed). Pulled %d images (%d cache hits, %d misses).",
		st.Pushed, st.PushFailed, st.Pulled, st.Hits, st.Misses)
	cerr := s.store.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("proxy: serve on %s: %w", l.Addr(), serveErr)
	}
	return cerr
}

// Close removes the received blobs (for a Server used only as a handler).
func (s *Server) Close() error { return s.store.Close() }

// debugWriter sends the HTTP server's own messages to the debug log.
type debugWriter struct{ l *zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "proxy").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// downRepo is the downstream repository of name.
func (s *Server) downRepo(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// ServeHTTP routes a registry request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Done()
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := r.URL.Path
	zerolog.Ctx(r.Context()).Debug().Str("method", r.Method).Str("path", p).Msg("Proxy request")
	switch {
	case p == "/v2/" || p == "/v2":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			regError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "{}")
	case !strings.HasPrefix(p, "/v2/") || r.Method == http.MethodDelete:
		regError(w, http.StatusNotFound, "UNSUPPORTED", "not supported by the proxy")
	case strings.Contains(p, "/blobs/uploads"):
		i := strings.LastIndex(p, "/blobs/uploads")
		repo, id := p[:i], strings.Trim(p[i+len("/blobs/uploads"):], "/")
		switch {
		case r.Method == http.MethodPost && id == "":
			s.startUpload(w, r, repo)
		case r.Method == http.MethodPatch && id != "":
			s.patchUpload(w, r, repo, id)
		case r.Method == http.MethodPut && id != "":
			s.putUpload(w, r, id)
		default:
			regError(w, http.StatusNotFound, "UNSUPPORTED", "not supported by the proxy")
		}
	case strings.Contains(p, "/blobs/"):
		i := strings.LastIndex(p, "/blobs/")
		s.serveBlob(w, r, p[len("/v2/"):i], p[i+len("/blobs/"):])
	case strings.Contains(p, "/manifests/"):
		i := strings.LastIndex(p, "/manifests/")
		name, ref := p[len("/v2/"):i], p[i+len("/manifests/"):]
		switch r.Method {
		case http.MethodPut:
			s.putManifest(w, r, name, ref)
		case http.MethodGet, http.MethodHead:
			s.getManifest(w, r, name, ref)
		default:
			regError(w, http.StatusNotFound, "UNSUPPORTED", "not supported by the proxy")
		}
	default: // _catalog, tags/list
		regError(w, http.StatusNotFound, "UNSUPPORTED", "not supported by the proxy")
	}
}

// regError answers with a registry error body.
func regError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, repo string) {
	id, err := s.store.start()
	if err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Could not start an upload")
		regError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
		return
	}
	w.Header().Set("Location", repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", "0-0")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	n, err := s.store.write(id, r.Body)
	switch {
	case errors.Is(err, errUploadUnknown):
		regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", err.Error())
		return
	case err != nil:
		zerolog.Ctx(r.Context()).Debug().Err(err).Msg("Blob upload failed")
		s.store.drop(id)
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	w.Header().Set("Location", repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(n-1, 0)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, id string) {
	want, err := digest.Parse(r.URL.Query().Get("digest"))
	if err != nil || want.Algorithm() != digest.SHA256 {
		s.store.drop(id)
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", "missing or invalid digest")
		return
	}
	if _, err := s.store.write(id, r.Body); err != nil {
		if errors.Is(err, errUploadUnknown) {
			regError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", err.Error())
			return
		}
		s.store.drop(id)
		regError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	n, err := s.store.finish(id, want)
	if err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Blob upload refused")
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	zerolog.Ctx(r.Context()).Debug().Str("digest", want.String()).Int64("bytes", n).Msg("Blob received")
	w.Header().Set("Docker-Content-Digest", want.String())
	w.Header().Set("Location", "/v2/_/blobs/"+want.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// serveBlob answers HEAD and GET of a blob: one received here, else (with
// an upstream) the downstream's.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, name, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		regError(w, http.StatusNotFound, "UNSUPPORTED", "not supported by the proxy")
		return
	}
	d, err := digest.Parse(ref)
	if err != nil {
		regError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest")
		return
	}
	if b := s.store.get(d); b != nil {
		f, err := os.Open(b.Path)
		if err != nil {
			regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		defer f.Close()
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.CopyBuffer(w, f, make([]byte, copyBuffer))
		}
		return
	}
	if s.opts.Upstream == "" {
		regError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
		return
	}
	ctx := r.Context()
	repo := s.downRepo(name)
	there, size, err := s.down.BlobExists(ctx, repo, d)
	switch {
	case err != nil:
		zerolog.Ctx(ctx).Error().Err(err).Msg("Downstream blob check failed")
		regError(w, http.StatusBadGateway, "UNKNOWN", err.Error())
		return
	case !there:
		regError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
		return
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	rc, err := s.down.Blob(ctx, repo, d, size)
	if err != nil {
		if errors.Is(err, transport.ErrNotFound) {
			regError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		regError(w, http.StatusBadGateway, "UNKNOWN", err.Error())
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyBuffer(w, rc, make([]byte, copyBuffer)); err != nil {
		// The status is sent: all a failed stream can do is end short.
		zerolog.Ctx(ctx).Error().Err(err).Str("digest", d.String()).Msg("Blob stream from downstream failed")
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
func (s *Server) run(ctx context.Context, src stage.Source, name, tag string) (digest.Digest, error) {
	img := stage.Image{Name: name, Tag: tag}
	stages, err := s.opts.Filters(img)
	if err != nil {
		return "", err
	}
	so := s.opts.Sink
	so.Host, so.Repo, so.Tag, so.Registry = s.host, s.downRepo(name), tag, s.opts.DownstreamRegistry
	sink := registry.New(s.opts.Transport, so)
	if _, err := stage.Run(ctx, src, stages, sink, s.opts.Engine); err != nil {
		return "", err
	}
	return sink.Digest(), nil
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, name, tag string) {
	ctx := r.Context()
	lg := zerolog.Ctx(ctx).With().Str("image", name+":"+tag).Logger()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil || len(body) > maxManifest {
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest unreadable or too large")
		return
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
		return
	}
	if probe.Manifests != nil {
		lg.Error().Err(ErrManifestList).Msg("Push refused")
		regError(w, http.StatusBadRequest, "MANIFEST_INVALID", ErrManifestList.Error())
		return
	}
	mediaType := r.Header.Get("Content-Type")
	if mediaType == "" {
		mediaType = probe.MediaType
	}
	if mediaType == "" {
		mediaType = mediaTypeDockerManifest
	}
	d := digest.FromBytes(body)
	err = func() error {
		src, err := newPushed(s.store, stage.Image{Name: name, Tag: tag}, body, mediaType)
		if err != nil {
			return err
		}
		src.inflate = s.opts.Inflate
		release, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		defer release()
		start := time.Now()
		got, err := s.run(lg.WithContext(ctx), src, name, tag)
		if err != nil {
			return err
		}
		lg.Info().Str("downstream", s.host+"/"+s.downRepo(name)+":"+tag).Str("digest", got.String()).
			Dur("elapsed", time.Since(start)).Msg("Pushed image downstream")
		return nil
	}()
	if err != nil {
		s.pushFailed.Add(1)
		lg.Error().Err(err).Msg("Proxy push failed")
		regError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	s.pushed.Add(1)
	if s.opts.Upstream == "" {
		c := cached{body: body, mediaType: mediaType, digest: d}
		s.mu.Lock()
		s.manifests[name+"@"+tag] = c
		s.manifests[name+"@"+d.String()] = c
		s.mu.Unlock()
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func writeManifest(w http.ResponseWriter, r *http.Request, body []byte, mediaType string, d digest.Digest) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	if s.opts.Upstream == "" {
		s.mu.Lock()
		c, ok := s.manifests[name+"@"+ref]
		s.mu.Unlock()
		if !ok {
			regError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		writeManifest(w, r, c.body, c.mediaType, c.digest)
		return
	}
	m, err := s.pullThrough(r.Context(), name, ref)
	if err != nil {
		s.pullFailed.Add(1)
		zerolog.Ctx(r.Context()).Error().Err(err).Str("image", name+":"+ref).Msg("Pull-through failed")
		regError(w, http.StatusBadGateway, "UNKNOWN", err.Error())
		return
	}
	writeManifest(w, r, m.Body, m.MediaType, m.Digest)
}

// pullThrough returns the downstream's manifest of name:ref, pulling the
// image from the upstream into the downstream first when it has none.
func (s *Server) pullThrough(ctx context.Context, name, ref string) (transport.Manifest, error) {
	repo := s.downRepo(name)
	m, err := s.down.GetManifest(ctx, repo, ref, accept)
	if err == nil {
		s.hits.Add(1)
		return m, nil
	}
	if !errors.Is(err, transport.ErrNotFound) {
		return m, err
	}
	unlock, err := s.locks.Lock(ctx, name+":"+ref)
	if err != nil {
		return transport.Manifest{}, err
	}
	defer unlock()
	if m, err := s.down.GetManifest(ctx, repo, ref, accept); err == nil {
		s.hits.Add(1) // pulled by the request we waited for
		return m, nil
	} else if !errors.Is(err, transport.ErrNotFound) {
		return m, err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return transport.Manifest{}, err
	}
	defer release()
	lg := zerolog.Ctx(ctx).With().Str("image", name+":"+ref).Str("upstream", s.opts.Upstream).Logger()
	so := s.opts.Source
	so.Host, so.Repo, so.Tag, so.Registry, so.TempDir = s.opts.Upstream, name, ref, s.opts.UpstreamRegistry, s.opts.TempDir
	start := time.Now()
	if _, err := s.run(lg.WithContext(ctx), sourcereg.New(s.opts.Transport, so), name, ref); err != nil {
		return transport.Manifest{}, fmt.Errorf("pull %s/%s:%s through the proxy: %w", s.opts.Upstream, name, ref, err)
	}
	s.misses.Add(1)
	lg.Info().Dur("elapsed", time.Since(start)).Msg("Pulled image from upstream")
	return s.down.GetManifest(ctx, repo, ref, accept)
}
