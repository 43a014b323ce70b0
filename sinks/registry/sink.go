package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/keylock"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport"
)

// DefaultChunkSize is the most one PATCH streams. Chunks are streamed, not
// buffered: the size bounds how many requests a blob takes, not memory.
const DefaultChunkSize = 256 << 20

// MonolithicMax is the largest blob of known digest and size (a copied
// blob, a config) sent in one streamed PUT after the POST (two round trips
// where chunks take three). Nothing is buffered; a PUT that fails cannot be
// resumed at an offset, so the blob is sent again from its start in a new
// session, which bounds what a failure costs.
const MonolithicMax = 32 << 20

// chunkPools holds one pool of read-ahead buffers per size, shared by every
// sink of the process (images of a run reuse their buffers).
var chunkPools sync.Map // int → *sync.Pool

func chunkPool(size int) *sync.Pool {
	if p, ok := chunkPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := chunkPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

// Options say where to push and how.
type Options struct {
	// Host is the registry's host[:port]; Repo and Tag name the image.
	Host, Repo, Tag string
	// Registry holds insecure and per-URI credentials.
	Registry transport.RegistryOptions
	// Compression is gzip (default) or zstd, for layers that are not copied
	// through.
	Compression string
	// Workers is how many blobs upload at once (default 4); as many again
	// existence checks run ahead of them.
	Workers int
	// ChunkSize is the most bytes one PATCH streams (default
	// DefaultChunkSize); blobs up to min(1 MiB, ChunkSize) go in one PUT.
	ChunkSize int
	// Retries is how many times an upload is resumed at the registry's
	// offset after a chunk fails (default 1 when 0 or less).
	Retries int
	// Cache is the --layer-cache, shared by the sinks of a run; may be nil.
	Cache *layercache.Cache
	// FiltersHash is the cache's filters hash for this run.
	FiltersHash string
	// Pushed remembers the blobs this run pushed, for cross-repository
	// mounts; shared by the sinks of a run; may be nil.
	Pushed *Pushed
}

// BlobOrigin is an optional capability of a passthrough layer body: the
// compressed blob's descriptor, the registry and repository it came from
// (for a cross-repository mount), and a stream of it under the caller's
// context. The registry source implements it: its blob is not read at all
// when the destination has it or can mount it.
type BlobOrigin interface {
	CompressedDescriptor() v1.Descriptor
	Origin() (host, repo string)
	OpenBlob(ctx context.Context) (io.ReadCloser, error)
}

// Pushed is the set of blobs a run pushed, by registry host and digest, and
// the repository each went to. It is safe for concurrent use.
type Pushed struct {
	mu     sync.Mutex
	m      map[string]string
	layers map[string]v1.Descriptor // by compression and DiffID (or name)
	// busy is held, per host and digest, by the sink now pushing that blob.
	busy keylock.Locks
	// pinged holds the hosts a sink of the run has pinged.
	pinged map[string]bool
}

// NewPushed makes an empty set.
func NewPushed() *Pushed {
	return &Pushed{m: map[string]string{}, layers: map[string]v1.Descriptor{}, pinged: map[string]bool{}}
}

// firstPing reports whether host is yet to be pinged in this run (and
// marks it pinged).
func (p *Pushed) firstPing(host string) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pinged[host] {
		return false
	}
	p.pinged[host] = true
	return true
}

// in reports whether this run pushed (or found) d in repo of host.
func (p *Pushed) in(host string, d digest.Digest, repo string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[host+" "+d.String()]
	return ok && r == repo
}

// claim makes the caller the only sink of the run pushing blob d to host:
// it waits while another one is, so that the second finds the blob pushed
// (and mounts it) instead of uploading it again. release ends the claim.
func (p *Pushed) claim(ctx context.Context, host string, d digest.Digest) (release func(), err error) {
	if p == nil {
		return func() {}, nil
	}
	return p.busy.Lock(ctx, host+" "+d.String())
}

// addLayer remembers the blob a layer compressed to.
func (p *Pushed) addLayer(key string, d v1.Descriptor) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers[key] = d
}

// layer is the blob a layer compressed to earlier in the run.
func (p *Pushed) layer(key string) (v1.Descriptor, bool) {
	if p == nil {
		return v1.Descriptor{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.layers[key]
	return d, ok
}

// Add records that repo of host has blob d.
func (p *Pushed) Add(host string, d digest.Digest, repo string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[host+" "+d.String()] = repo
}

// elsewhere is the repository of host this run pushed d to, if it is not
// repo.
func (p *Pushed) elsewhere(host string, d digest.Digest, repo string) (string, bool) {
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[host+" "+d.String()]
	return r, ok && r != repo
}

// Counts are what a sink did, for logs and tests.
type Counts struct {
	Uploaded, Existing, Mounted, CacheHits, Passthrough int64
	BytesIn, BytesOut                                   int64 // uncompressed read, compressed produced
}

// Sink pushes one image.
type Sink struct {
	opts Options
	reg  *transport.Registry

	bufs                                        *sync.Pool
	uploaded, existing, mounted, hits, passthru atomic.Int64
	bytesIn, bytesOut                           atomic.Int64
	digest                                      digest.Digest
	pushed                                      func(cfg digest.Digest, blobs []digest.Digest) // set by Output

	aheadMu sync.Mutex
	ahead   map[digest.Digest]*headAhead // HEADs sent when the manifest came
}

// headAhead is a HEAD sent ahead of its blob: done is closed when there
// and err are set.
type headAhead struct {
	done  chan struct{}
	there bool
	err   error
}

// New makes the sink of one image, pushing through t.
func New(t *transport.Transport, opts Options) *Sink {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Compression == "" {
		opts.Compression = Gzip
	}
	if opts.Tag == "" {
		opts.Tag = "latest"
	}
	if opts.Retries <= 0 {
		opts.Retries = t.Retries()
	}
	s := &Sink{opts: opts, reg: t.Registry(opts.Host, opts.Registry), bufs: chunkPool(min(opts.ChunkSize, 1<<20))}
	return s
}

// Properties: layers in any order, and the source's compressed blobs
// when nothing changes content.
func (s *Sink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "registry", Compressed: true}
}

// Counts returns what the sink did so far.
func (s *Sink) Counts() Counts {
	return Counts{
		Uploaded: s.uploaded.Load(), Existing: s.existing.Load(), Mounted: s.mounted.Load(),
		CacheHits: s.hits.Load(), Passthrough: s.passthru.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
	}
}

// Digest is the digest of the manifest pushed (after Consume succeeded).
func (s *Sink) Digest() digest.Digest { return s.digest }

func (s *Sink) where() string {
	return fmt.Sprintf("%s/%s:%s", s.opts.Host, s.opts.Repo, s.opts.Tag)
}

// layerResult is what became of one layer.
type layerResult struct {
	desc        v1.Descriptor
	passthrough bool   // copied as the source's blob
	cacheKey    string // record under this key ("" = do not record)
}

// Consume pushes every blob, then the manifest.
func (s *Sink) Consume(ctx context.Context, in <-chan stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.where()).Logger()
	ctx = log.WithContext(ctx)
	start := time.Now()

	var (
		mu       sync.Mutex
		results  = map[int]layerResult{}
		config   *stage.Item
		cfgDesc  v1.Descriptor
		manifest *stage.Item
	)
	// Existence checks (and hashing passthrough blobs whose digest is not
	// known) run in up to 2×Workers goroutines; uploads take one of Workers
	// slots, so checks run ahead of the uploads that wait for a slot.
	slots := make(chan struct{}, s.opts.Workers)
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(2 * s.opts.Workers)
	// The first sink of the run to push to a host pings it, so that the
	// connection (and the token realm) is ready when the first blob is.
	if s.opts.Pushed.firstPing(s.opts.Host) {
		p.Go(func(ctx context.Context) error {
			if err := s.reg.Ping(ctx); err != nil {
				log.Debug().Err(err).Msg("Ping failed")
			}
			return nil
		})
	}
	// The first failed blob stops the intake: Consume returns its error,
	// and the engine cancels the source and releases what is in flight.
	failed := make(chan struct{})
	var secondConfig error
	var failOnce sync.Once
	fail := func(err error) error {
		if err != nil {
			failOnce.Do(func() { close(failed) })
		}
		return err
	}
intake:
	for {
		var it stage.Item
		var ok bool
		select {
		case it, ok = <-in:
			if !ok {
				break intake
			}
		case <-failed:
			break intake
		case <-ctx.Done():
			break intake
		}
		switch it.Kind {
		case stage.KindManifest:
			m := it
			manifest = &m
			s.headAhead(ctx, p, m.Data)
		case stage.KindConfig:
			if config != nil {
				_ = it.Release()
				secondConfig = fmt.Errorf("%s: %w %q after %q", s.where(), stage.ErrSecondConfig, it.Name, config.Name)
				p.Go(func(context.Context) error { return fail(secondConfig) }) // stops the uploads in flight
				break intake
			}
			c := it
			config = &c
			// A config that says where its blob is (a registry source in
			// passthrough) is mounted from there when that is this registry.
			from := ""
			if o, ok := c.Body.(BlobOrigin); ok {
				if host, repo := o.Origin(); host == s.opts.Host && repo != s.opts.Repo {
					from = repo
				}
			}
			_ = c.Release()
			p.Go(func(ctx context.Context) error {
				// The config is small and in memory: it takes no upload
				// slot, so that the layers get all of them.
				d, err := s.ensureBlob(ctx, v1.Descriptor{MediaType: MediaTypeDockerConfig, Digest: digest.FromBytes(c.Data), Size: int64(len(c.Data))},
					bytesOpener(c.Data), from, nil)
				if err != nil {
					return fail(fmt.Errorf("config %s: %w", c.Name, err))
				}
				mu.Lock()
				cfgDesc = d
				mu.Unlock()
				return nil
			})
		case stage.KindLayer:
			p.Go(func(ctx context.Context) error {
				defer it.Release()
				r, err := s.pushLayer(ctx, it, slots)
				if err != nil {
					return fail(fmt.Errorf("layer %d (%s): %w", it.Seq, it.Name, err))
				}
				mu.Lock()
				results[it.Seq] = r
				mu.Unlock()
				return nil
			})
		default:
			_ = it.Release()
		}
	}
	if err := p.Wait(); secondConfig != nil {
		return secondConfig
	} else if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		return &uploadError{err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if config == nil {
		return ErrNoConfig
	}

	body, mediaType, err := s.manifest(config.Data, cfgDesc, results, manifest)
	if err != nil {
		return err
	}
	d, err := s.reg.PutManifest(ctx, s.opts.Repo, s.opts.Tag, mediaType, body)
	if err != nil {
		return err
	}
	s.digest = d
	if s.pushed != nil {
		blobs := []digest.Digest{cfgDesc.Digest}
		for i := range len(results) {
			blobs = append(blobs, results[i].desc.Digest)
		}
		s.pushed(cfgDesc.Digest, blobs)
	}
	if s.opts.Cache != nil {
		for _, r := range results {
			if r.cacheKey != "" {
				s.opts.Cache.Record(r.cacheKey, layercache.Entry{
					CompressedDigest: r.desc.Digest, CompressedSize: r.desc.Size,
					MediaType: r.desc.MediaType, FiltersHash: s.opts.FiltersHash,
				})
			}
		}
		if err := s.opts.Cache.Save(); err != nil {
			log.Warn().Err(err).Msg("Could not save the layer cache")
		}
	}
	c := s.Counts()
	ratio := 0.0
	if c.BytesIn > 0 {
		ratio = 100 * float64(c.BytesOut) / float64(c.BytesIn)
	}
	accounting.FromContext(ctx).SetDigest(d.String())
	log.Info().Int("layers", len(results)).Dur("elapsed_ms", time.Since(start)).
		Int64("uploaded", c.Uploaded).Int64("upload_skipped", c.Existing).Int64("mounted", c.Mounted).
		Int64("cache_hits", c.CacheHits).Int64("passthrough", c.Passthrough).
		Int64("bytes_in", c.BytesIn).Int64("bytes_out", c.BytesOut).Float64("ratio_pct", ratio).
		Str("digest", d.String()).Str("media_type", mediaType).Msg("Push complete")
	return nil
}

// headAhead sends, when the source's manifest comes (passthrough), a HEAD
// for its config and each layer, before the source sends them: the
// answers are ready when the blobs come, and ensureBlob uses them.
func (s *Sink) headAhead(ctx context.Context, p *pool.ContextPool, body []byte) {
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil || m.Config.Digest.Validate() != nil {
		return
	}
	s.aheadMu.Lock()
	defer s.aheadMu.Unlock()
	s.ahead = map[digest.Digest]*headAhead{}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if d.Digest.Validate() != nil || s.ahead[d.Digest] != nil {
			continue
		}
		h := &headAhead{done: make(chan struct{})}
		s.ahead[d.Digest] = h
		p.Go(func(ctx context.Context) error {
			defer close(h.done)
			h.there, _, h.err = s.reg.BlobExists(ctx, s.opts.Repo, d.Digest)
			return nil // ensureBlob sends its own HEAD after a failed one
		})
	}
}

// headAnswered says whether the HEAD sent ahead for d has its answer.
func (s *Sink) headAnswered(d digest.Digest) bool {
	s.aheadMu.Lock()
	h := s.ahead[d]
	s.aheadMu.Unlock()
	if h == nil {
		return false
	}
	select {
	case <-h.done:
		return h.err == nil
	default:
		return false
	}
}

// exists says whether the destination's repository has blob d: the HEAD
// sent ahead for it, else one now.
func (s *Sink) exists(ctx context.Context, d digest.Digest) (bool, error) {
	s.aheadMu.Lock()
	h := s.ahead[d]
	s.aheadMu.Unlock()
	if h != nil {
		select {
		case <-h.done:
			if h.err == nil {
				return h.there, nil
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, d)
	return there, err
}

// pushLayer makes sure the destination has one layer's blob.
func (s *Sink) pushLayer(ctx context.Context, it stage.Item, slots chan struct{}) (layerResult, error) {
	if it.Skipped() {
		if r, ok := s.cached(ctx, it.Name); ok {
			return r, nil
		}
		return layerResult{}, ErrSkippedLayer
	}
	if c, ok := it.Body.(stage.Compressed); ok {
		return s.pushCompressed(ctx, it, c, slots)
	}
	if r, ok := s.cached(ctx, it.Name); ok {
		return r, nil
	}
	// A layer this run already compressed (for another repository) has a
	// known blob: check it, and mount it rather than send it again.
	key := s.opts.Compression + " " + it.Name
	if it.DiffID != "" {
		key = s.opts.Compression + " " + it.DiffID.String()
	}
	var up *transport.Upload
	known, isKnown := s.opts.Pushed.layer(key)
	if isKnown {
		there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, known.Digest)
		if err != nil {
			return layerResult{}, err
		}
		if there {
			s.existing.Add(1)
			return layerResult{desc: known, cacheKey: it.Name}, nil
		}
	}
	done, err := acquire(ctx, slots)
	if err != nil {
		return layerResult{}, err
	}
	defer done()
	if isKnown {
		if from, ok := s.opts.Pushed.elsewhere(s.opts.Host, known.Digest, s.opts.Repo); ok {
			var mounted bool
			var err error
			if up, mounted, err = s.reg.StartUpload(ctx, s.opts.Repo, known.Digest, from); err != nil {
				return layerResult{}, err
			}
			if mounted {
				s.mounted.Add(1)
				s.opts.Pushed.Add(s.opts.Host, known.Digest, s.opts.Repo)
				return layerResult{desc: known, cacheKey: it.Name}, nil
			}
		}
	}
	desc, err := s.compressAndUpload(ctx, it, up)
	if err != nil {
		return layerResult{}, err
	}
	s.opts.Pushed.addLayer(key, desc)
	return layerResult{desc: desc, cacheKey: it.Name}, nil
}

// cached looks key up in the layer cache and confirms a hit with a HEAD.
func (s *Sink) cached(ctx context.Context, key string) (layerResult, bool) {
	if s.opts.Cache == nil {
		return layerResult{}, false
	}
	e, ok := s.opts.Cache.Lookup(key, s.opts.FiltersHash)
	if !ok || e.CompressedDigest.Validate() != nil {
		return layerResult{}, false
	}
	there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, e.CompressedDigest)
	if err != nil || !there {
		return layerResult{}, false
	}
	s.hits.Add(1)
	s.existing.Add(1)
	return layerResult{desc: v1.Descriptor{MediaType: e.MediaType, Digest: e.CompressedDigest, Size: e.CompressedSize}}, true
}

// pushCompressed copies the source's compressed blob as it is.
func (s *Sink) pushCompressed(ctx context.Context, it stage.Item, c stage.Compressed, slots chan struct{}) (layerResult, error) {
	var desc v1.Descriptor
	from := ""
	open := func(context.Context) (io.ReadCloser, error) {
		rc, _, err := c.OpenCompressed()
		return rc, err
	}
	if o, ok := it.Body.(BlobOrigin); ok {
		desc = o.CompressedDescriptor()
		if host, repo := o.Origin(); host == s.opts.Host && repo != s.opts.Repo {
			from = repo
		}
		open = o.OpenBlob
	} else {
		// Hash the blob first (a local read), so that a blob the
		// destination has is not sent.
		rc, mt, err := c.OpenCompressed()
		if err != nil {
			return layerResult{}, err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return layerResult{}, err
		}
		desc = v1.Descriptor{MediaType: mt, Digest: digest.NewDigest(digest.SHA256, h), Size: n}
	}
	got, err := s.ensureBlob(ctx, desc, open, from, slots)
	if err != nil {
		return layerResult{}, err
	}
	s.passthru.Add(1)
	return layerResult{desc: got, passthrough: true, cacheKey: it.Name}, nil
}

func bytesOpener(b []byte) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// acquire takes an upload slot (none when slots is nil); done gives it back.
func acquire(ctx context.Context, slots chan struct{}) (done func(), err error) {
	if slots == nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ensureBlob makes sure the destination has blob desc: HEAD, else a mount
// (from the source's repository on the same registry, or from a repository
// this run pushed it to), else an upload of what open gives.
func (s *Sink) ensureBlob(ctx context.Context, desc v1.Descriptor, open func(context.Context) (io.ReadCloser, error), from string, slots chan struct{}) (v1.Descriptor, error) {
	release, err := s.opts.Pushed.claim(ctx, s.opts.Host, desc.Digest)
	if err != nil {
		return desc, err
	}
	defer release()
	// A HEAD sent ahead may predate another sink of the run pushing the
	// blob to this repository while this one waited for its claim.
	there := s.opts.Pushed.in(s.opts.Host, desc.Digest, s.opts.Repo)
	if from == "" {
		from, _ = s.opts.Pushed.elsewhere(s.opts.Host, desc.Digest, s.opts.Repo)
	}
	// A blob that can be mounted is not HEADed first: the mount answers
	// for a blob the repository has too. A HEAD already answered is used.
	if !there && (from == "" || s.headAnswered(desc.Digest)) {
		if there, err = s.exists(ctx, desc.Digest); err != nil {
			return desc, err
		}
	}
	if there {
		s.existing.Add(1)
		s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
		return desc, nil
	}
	done, err := acquire(ctx, slots)
	if err != nil {
		return desc, err
	}
	defer done()
	if from == "" {
		from, _ = s.opts.Pushed.elsewhere(s.opts.Host, desc.Digest, s.opts.Repo)
	}
	var up *transport.Upload
	if from != "" {
		var mounted bool
		up, mounted, err = s.reg.StartUpload(ctx, s.opts.Repo, desc.Digest, from)
		if err != nil {
			return desc, err
		}
		if mounted {
			s.mounted.Add(1)
			s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
			return desc, nil
		}
	}
	var d digest.Digest
	var n int64
	if desc.Size <= int64(min(MonolithicMax, s.opts.ChunkSize)) {
		d, n, err = s.sendWhole(ctx, up, open, desc)
	} else {
		d, n, err = s.send(ctx, up, open, desc.Size, false)
	}
	if err != nil {
		return desc, err
	}
	if d != desc.Digest || n != desc.Size {
		return desc, fmt.Errorf("sent %s (%d bytes), expected %s (%d bytes): %w", d, n, desc.Digest, desc.Size, ErrDigestMismatch)
	}
	s.opts.Pushed.Add(s.opts.Host, desc.Digest, s.opts.Repo)
	return desc, nil
}

// sendWhole uploads a blob of known digest and size in one streamed PUT
// after the POST; the blob's stream opens while the POST is answered. A PUT
// that fails is sent again in a new session (the old one may hold part of
// the blob), up to the retries.
func (s *Sink) sendWhole(ctx context.Context, up *transport.Upload, open opener, desc v1.Descriptor) (digest.Digest, int64, error) {
	for attempt := 0; ; attempt++ {
		rc, u, err := s.openAndStart(ctx, up, open)
		if err != nil {
			return "", 0, err
		}
		h := &hashCount{h: sha256.New()}
		err = u.PutStream(ctx, desc.Digest, io.TeeReader(rc, h), desc.Size)
		rc.Close()
		if err == nil {
			s.uploaded.Add(1)
			s.bytesOut.Add(h.n)
			return digest.NewDigest(digest.SHA256, h.h), h.n, nil
		}
		if ctx.Err() != nil || attempt >= max(s.retries(), 1) {
			return "", 0, err
		}
		u.Resumed(ctx, 0)
		up = nil
	}
}

// openAndStart opens the blob's stream and, when up is nil, an upload
// session at the same time: the source's first bytes and the destination's
// session take one round trip, not two.
func (s *Sink) openAndStart(ctx context.Context, up *transport.Upload, open opener) (io.ReadCloser, *transport.Upload, error) {
	if up != nil {
		rc, err := open(ctx)
		return rc, up, err
	}
	var rc io.ReadCloser
	p := pool.New().WithErrors()
	p.Go(func() error {
		var err error
		rc, err = open(ctx) // the caller's ctx: the stream outlives the pool
		return err
	})
	up, _, err := s.reg.StartUpload(ctx, s.opts.Repo, "", "")
	if perr := p.Wait(); perr != nil {
		return nil, nil, perr
	}
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return rc, up, nil
}

// sourceErr keeps the first error a blob's stream returned (other than EOF),
// across the reopenings of a resumed upload.
type sourceErr struct {
	mu  sync.Mutex
	err error
}

func (e *sourceErr) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *sourceErr) wrap(open opener) opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &errTrackingReader{ReadCloser: rc, e: e}, nil
	}
}

type errTrackingReader struct {
	io.ReadCloser
	e *sourceErr
}

func (r *errTrackingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.e.mu.Lock()
		if r.e.err == nil {
			r.e.err = err
		}
		r.e.mu.Unlock()
	}
	return n, err
}

// opener opens a blob's stream; it may be called again to resume an upload
// (the stream then starts over and the caller skips what the registry has).
type opener func(ctx context.Context) (io.ReadCloser, error)

// compressAndUpload compresses a layer in a pipe straight into the upload.
// up is a session a failed mount attempt opened, or nil. Each open runs the
// compression from the layer's start again; it is deterministic, so a
// resumed upload continues the same bytes.
func (s *Sink) compressAndUpload(ctx context.Context, it stage.Item, up *transport.Upload) (v1.Descriptor, error) {
	compressors := pool.New().WithErrors()
	open := func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := it.Body.Open()
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		compressors.Go(func() error {
			defer rc.Close()
			zw, err := compressor(s.opts.Compression, pw)
			if err != nil {
				pw.CloseWithError(err)
				return err
			}
			_, err = io.Copy(zw, &countingReader{r: rc, n: &s.bytesIn})
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
			pw.CloseWithError(err) // nil: the reader sees EOF
			if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, errStreamClosed) {
				return nil // the reader stopped early (a resume or a failure it reports)
			}
			return err
		})
		return &pipeReader{pr}, nil
	}
	d, n, err := s.send(ctx, up, open, -1, true)
	if perr := compressors.Wait(); err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	s.opts.Pushed.Add(s.opts.Host, d, s.opts.Repo)
	return v1.Descriptor{MediaType: layerMediaType(s.opts.Compression), Digest: d, Size: n}, nil
}

var errStreamClosed = errors.New("upload stream closed")

// pipeReader stops its writer when closed before the end.
type pipeReader struct{ *io.PipeReader }

func (p *pipeReader) Close() error { return p.CloseWithError(errStreamClosed) }

// send uploads the blob open gives (size bytes, or -1 when not known) and
// returns its digest and size.
//
// The first bytes (up to min(1 MiB, ChunkSize)) are read ahead: a blob that
// ends there goes in one monolithic PUT ?digest= (after a HEAD when check is
// set and up is nil, now that its digest is known: a blob the destination
// has is not sent). A larger one streams in PATCH chunks of up to ChunkSize
// bytes, read straight from the stream into the request (nothing buffered),
// hashed on the way, then a closing PUT with the digest. A chunk that fails
// (after the transport's own retries) is resumed at the offset the registry
// reports: the stream is opened again and what the registry has is skipped
// (and hashed). up is a session already opened (by a mount attempt), or nil.
func (s *Sink) send(ctx context.Context, up *transport.Upload, open opener, size int64, check bool) (_ digest.Digest, _ int64, err error) {
	// When the blob's own stream fails (a source blob whose digest does not
	// match, a compressor error), that is the cause, whatever error the
	// upload then ended with: the registry may answer the cut body first.
	var srcErr sourceErr
	open = srcErr.wrap(open)
	defer func() {
		if err != nil {
			if cause := srcErr.get(); cause != nil {
				err = cause
			}
		}
	}()
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	probe := *bp
	var rc io.ReadCloser
	if size > int64(len(probe)) {
		// Known to need a session: open it while the stream opens.
		rc, up, err = s.openAndStart(ctx, up, open)
	} else {
		rc, err = open(ctx)
	}
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()

	n, err := io.ReadFull(rc, probe)
	whole := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if err != nil && !whole {
		return "", 0, err
	}
	if whole {
		d := digest.FromBytes(probe[:n])
		if check && up == nil {
			there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, d)
			if err != nil {
				return "", 0, err
			}
			if there {
				s.existing.Add(1)
				return d, int64(n), nil
			}
		}
		if up == nil {
			if up, _, err = s.reg.StartUpload(ctx, s.opts.Repo, "", ""); err != nil {
				return "", 0, err
			}
		}
		if err := up.Put(ctx, d, probe[:n]); err != nil {
			return "", 0, err
		}
		s.uploaded.Add(1)
		s.bytesOut.Add(int64(n))
		return d, int64(n), nil
	}
	if up == nil {
		if up, _, err = s.reg.StartUpload(ctx, s.opts.Repo, "", ""); err != nil {
			return "", 0, err
		}
	}
	h := &hashCount{h: sha256.New()}
	h.Write(probe[:n])
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(probe[:n]), rc), 64<<10)
	chunk := int64(s.opts.ChunkSize)
	resumes := 0
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", 0, err
		}
		start := up.Offset()
		want := int64(-1)
		if size >= 0 {
			want = min(chunk, size-start)
		}
		// Bytes before the probe's end were hashed already.
		err := up.Patch(ctx, &hashFrom{r: io.LimitReader(br, chunk), h: h, pos: start, from: int64(n)}, want)
		if err == nil {
			continue
		}
		if ctx.Err() != nil || resumes >= max(s.retries(), 1) {
			return "", 0, err
		}
		resumes++
		off, serr := up.Status(ctx)
		if serr != nil {
			return "", 0, fmt.Errorf("%w (and the upload's status: %v)", err, serr)
		}
		rc.Close()
		if rc, err = open(ctx); err != nil {
			return "", 0, err
		}
		h = &hashCount{h: sha256.New()}
		if _, err := io.CopyN(h, rc, off); err != nil {
			return "", 0, fmt.Errorf("resume at %d: %w", off, err)
		}
		n = int(off) // everything before off is hashed
		br = bufio.NewReaderSize(rc, 64<<10)
		up.Resumed(ctx, off)
	}
	total := up.Offset()
	if h.n != total {
		return "", 0, fmt.Errorf("registry has %d bytes of the blob, %d were read: %w", total, h.n, transport.ErrSizeMismatch)
	}
	d := digest.NewDigest(digest.SHA256, h.h)
	if err := up.Put(ctx, d, nil); err != nil {
		return "", 0, err
	}
	s.uploaded.Add(1)
	s.bytesOut.Add(total)
	return d, total, nil
}

func (s *Sink) retries() int { return s.opts.Retries }

// hashCount hashes and counts.
type hashCount struct {
	h hash.Hash
	n int64
}

func (c *hashCount) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

// hashFrom hashes what is read through it once the stream position passes
// from (bytes before it were hashed when read ahead).
type hashFrom struct {
	r         io.Reader
	h         *hashCount
	pos, from int64
}

func (t *hashFrom) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		b := p[:n]
		if skip := t.from - t.pos; skip > 0 {
			b = b[min(skip, int64(n)):]
		}
		t.h.Write(b)
		t.pos += int64(n)
	}
	return n, err
}

// schema2 is a Docker schema 2 manifest, its keys in the original's order.
type schema2 struct {
	SchemaVersion int           `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	Config        schema2Desc   `json:"config"`
	Layers        []schema2Desc `json:"layers"`
}

type schema2Desc struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
}

// manifest is the source's manifest as fetched when every blob was copied
// through and matches it; otherwise a Docker schema 2 manifest (an OCI
// manifest of the same shape when a layer is zstd).
func (s *Sink) manifest(cfg []byte, cfgDesc v1.Descriptor, results map[int]layerResult, fetched *stage.Item) ([]byte, string, error) {
	for i := range len(results) {
		if _, ok := results[i]; !ok {
			return nil, "", fmt.Errorf("image %s: layer %d never arrived: %w", s.where(), i, ErrUploadFailed)
		}
	}
	if fetched != nil && asFetched(fetched.Data, cfgDesc.Digest, results) {
		return fetched.Data, fetched.Name, nil
	}
	oci := false
	for _, r := range results {
		oci = oci || isZstd(r.desc.MediaType)
	}
	m := schema2{
		SchemaVersion: 2,
		MediaType:     MediaTypeDockerManifest,
		Config:        schema2Desc{MediaType: MediaTypeDockerConfig, Size: int64(len(cfg)), Digest: cfgDesc.Digest},
	}
	layerType := dockerMediaType
	if oci {
		m.MediaType, m.Config.MediaType, layerType = MediaTypeOCIManifest, MediaTypeOCIConfig, ociMediaType
	}
	for i := range len(results) {
		d := results[i].desc
		m.Layers = append(m.Layers, schema2Desc{MediaType: layerType(d.MediaType), Size: d.Size, Digest: d.Digest})
	}
	b, err := json.Marshal(m)
	return b, m.MediaType, err
}

// asFetched reports whether a fetched manifest describes exactly the config
// and the blobs pushed.
func asFetched(body []byte, cfg digest.Digest, results map[int]layerResult) bool {
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil || m.Config.Digest != cfg || len(m.Layers) != len(results) {
		return false
	}
	for i, l := range m.Layers {
		r := results[i]
		if !r.passthrough || r.desc.Digest != l.Digest || r.desc.Size != l.Size {
			return false
		}
	}
	return true
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
