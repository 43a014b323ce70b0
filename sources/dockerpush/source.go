package dockerpush

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

const (
	// DefaultManifestTimeout is how long Emit waits for the manifest after
	// the engine says the push is over, as the original does.
	DefaultManifestTimeout = 10 * time.Second
	// untagTimeout bounds the removal of the temporary tag, which runs
	// even when the run was cancelled.
	untagTimeout = 30 * time.Second
)

// Options tune a Source.
type Options struct {
	// TempDir holds the received layers. Default: the system's temporary
	// directory.
	TempDir string
	// ManifestTimeout is how long to wait for the manifest once the push
	// is over. Default DefaultManifestTimeout.
	ManifestTimeout time.Duration
	// Inflate gunzips the received layers (nil: Go's).
	Inflate *inflate.Inflater
	// Digests, when set (the --layer-cache file's .digests companion),
	// records the compressed blob the engine pushes for each layer; on a
	// later run the embedded registry answers HEAD with 200 for the blobs
	// of the layers the output already has, so the engine does not send
	// them. It is saved when Emit succeeds.
	Digests *layercache.Digests
}

// Source is an image in a Docker engine, read by making the engine push it
// to an embedded registry. See the package documentation.
type Source struct {
	c       *dockerclient.Client
	img     stage.Image
	ref     string
	id      digest.Digest
	diffIDs []digest.Digest
	opts    Options
	has     func(name string) bool
	emitted bool
}

// Open inspects image (IMAGE[:TAG]) in the engine c talks to: an unknown
// image gives ErrImageNotFound.
func Open(ctx context.Context, c *dockerclient.Client, image string, opts Options) (*Source, error) {
	if opts.ManifestTimeout <= 0 {
		opts.ManifestTimeout = DefaultManifestTimeout
	}
	img := dockerclient.ParseImage(image)
	ref := img.Name + ":" + img.Tag
	info, err := c.InspectImage(ctx, ref)
	if errors.Is(err, dockerclient.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range info.RootFS.Layers {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("inspect image %s: layer %q: %w", ref, d, err)
		}
	}
	return &Source{c: c, img: img, ref: ref, id: info.ID, diffIDs: info.RootFS.Layers, opts: opts}, nil
}

// Image is the image the source reads.
func (s *Source) Image() stage.Image { return s.img }

// ID is the image's config digest, as the engine reports it.
func (s *Source) ID() digest.Digest { return s.id }

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "dockerpush"}
}

// Wire takes the sink's test for layers it already has, by DiffID hex
// (stage.Wirable): those are emitted with a nil Body, and their blobs are
// dropped on arrival.
func (s *Source) Wire(w stage.Wiring) { s.has = w.Has }

// Close releases nothing: every file Emit made belongs to an item's body or
// was removed before Emit returned. It is there for the CLI's source
// interface.
func (s *Source) Close() error { return nil }

// Emit runs the push and sends the config and the layers. See the package
// documentation.
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) (err error) {
	if s.emitted {
		return fmt.Errorf("dockerpush image %s: Emit called twice", s.ref)
	}
	s.emitted = true
	lg := zerolog.Ctx(ctx).With().Str("image", s.ref).Logger()

	tlsCfg, err := selfSigned(time.Now())
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("embedded registry for %s: %w", s.ref, err)
	}
	reg := newRegistry(s.opts.TempDir, lg.With().Str("component", "registry").Logger())
	reg.inflate = s.opts.Inflate
	reg.assumed = s.assumed()
	if n := len(reg.assumed); n > 0 {
		lg.Debug().Int("blobs", n).Msg("Telling the engine the registry has the blobs of the layers the output has")
	}
	srv := &http.Server{
		Handler:           reg,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          log.New(debugWriter{lg}, "", 0),
	}
	serve := pool.New().WithErrors()
	serve.Go(func() error {
		if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("embedded registry for %s: %w", s.ref, err)
		}
		return nil
	})
	defer func() {
		// Close, not Shutdown: the push is over or abandoned.
		cerr := srv.Close()
		serr := serve.Wait()
		rerr := reg.Close()
		if err == nil {
			err = errors.Join(cerr, serr, rerr)
		}
	}()

	port := l.Addr().(*net.TCPAddr).Port
	repo := fmt.Sprintf("127.0.0.1:%d/%s", port, s.img.Name)
	pushRef := repo + ":" + s.img.Tag
	lg.Debug().Str("registry", l.Addr().String()).Msg("Embedded registry listening")
	if err := s.c.Tag(ctx, s.ref, repo, s.img.Tag); err != nil {
		if errors.Is(err, dockerclient.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrImageNotFound, s.ref)
		}
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), untagTimeout)
		defer cancel()
		if err := s.c.Untag(uctx, pushRef); err != nil {
			lg.Warn().Err(err).Str("tag", pushRef).Msg("Failed to untag")
		}
	}()

	pushed := make(chan struct{})
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	p.Go(func(ctx context.Context) error {
		start := time.Now()
		err := s.c.Push(ctx, pushRef, func(st string) { lg.Debug().Str("status", st).Msg("Push") })
		if f := reg.Failure(); f != nil {
			return fmt.Errorf("dockerpush image %s: %w", s.ref, f)
		}
		if err != nil {
			return err
		}
		lg.Debug().Dur("elapsed_ms", time.Since(start)).Msg("Push complete")
		close(pushed)
		return nil
	})
	p.Go(func(ctx context.Context) error { return s.collect(ctx, reg, pushed, out) })
	if err := p.Wait(); err != nil {
		return err
	}
	if s.opts.Digests != nil {
		if err := s.opts.Digests.Save(); err != nil {
			lg.Warn().Err(err).Msg("Could not save the layer digests")
		}
	}
	return nil
}

// assumed maps the compressed blobs the .digests file knows for the layers
// the output has (and so skips) to those layers' DiffIDs.
func (s *Source) assumed() map[digest.Digest]digest.Digest {
	if s.opts.Digests == nil || s.has == nil {
		return nil
	}
	out := map[digest.Digest]digest.Digest{}
	for _, d := range s.diffIDs {
		if !s.has(d.Encoded()) {
			continue
		}
		for _, c := range s.opts.Digests.Compressed(d.Encoded()) {
			cd := digest.NewDigestFromEncoded(digest.SHA256, c)
			if cd.Validate() == nil {
				out[cd] = d
			}
		}
	}
	return out
}

// debugWriter sends the HTTP server's own messages (TLS handshake errors
// and the like) to the debug log.
type debugWriter struct{ l zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "registry").Str("text", strings.TrimSpace(string(p))).Msg("HTTP server")
	return len(p), nil
}

// collector places received blobs in the image and sends the items.
type collector struct {
	s      *Source
	reg    *registry
	out    chan<- stage.Item
	seqsOf map[digest.Digest][]int
	skip   []bool
	have   []bool
	// order holds the layers received (or skipped) until the ones before
	// them are sent.
	order   stage.Ordered[stage.Item]
	byDiges map[digest.Digest]*blob // every blob received, by pushed digest
	stray   []*blob                 // blobs that are no layer of the image (yet)
	config  []byte
}

// collect takes blobs from reg as they arrive and sends the config and
// layers in Seq order as soon as each is complete; after the push it checks
// what arrived against the manifest.
func (s *Source) collect(ctx context.Context, reg *registry, pushed <-chan struct{}, out chan<- stage.Item) error {
	n := len(s.diffIDs)
	c := &collector{s: s, reg: reg, out: out, seqsOf: map[digest.Digest][]int{}, skip: make([]bool, n),
		have: make([]bool, n), byDiges: map[digest.Digest]*blob{}}
	for i, d := range s.diffIDs {
		c.seqsOf[d] = append(c.seqsOf[d], i)
		c.skip[i] = s.has != nil && s.has(d.Encoded())
		if c.skip[i] {
			// Sent with a nil Body when its turn comes.
			it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: d.Encoded(), DiffID: d, Size: -1}
			if err := c.order.Put(i, it); err != nil {
				return fmt.Errorf("dockerpush image %s: layer %d: %w", s.ref, i, err)
			}
		}
	}
	defer c.cleanup()
	var (
		done  bool
		timer *time.Timer
		tc    <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		blobs, manifest, failure := reg.Take()
		if failure != nil {
			return fmt.Errorf("dockerpush image %s: %w", s.ref, failure)
		}
		for _, b := range blobs {
			if err := c.place(ctx, b); err != nil {
				return err
			}
		}
		if err := c.flush(ctx); err != nil {
			return err
		}
		if done && manifest != nil {
			return c.finish(ctx, manifest)
		}
		select {
		case <-reg.Changed():
		case <-pushed:
			pushed, done = nil, true
			timer = time.NewTimer(s.opts.ManifestTimeout)
			tc = timer.C
		case <-tc:
			return fmt.Errorf("dockerpush image %s: %w (timeout=%s)", s.ref, ErrManifestTimeout, s.opts.ManifestTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// place takes ownership of blob b: the config is sent at once, a layer is
// made ready for each place the image has it.
func (c *collector) place(ctx context.Context, b *blob) error {
	s := c.s
	c.byDiges[b.Digest] = b
	if b.Digest == s.id && c.config == nil {
		data, err := os.ReadFile(b.Path)
		_ = removeFile(b.Path)
		b.Path = ""
		if err != nil {
			return fmt.Errorf("dockerpush image %s: read config: %w", s.ref, err)
		}
		if digest.FromBytes(data) != s.id {
			return fmt.Errorf("dockerpush image %s: %w: config blob %s is compressed (%s)", s.ref, ErrPushed, b.Digest, b.Comp)
		}
		c.config = data
		it := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: s.id.Encoded() + ".json", Size: int64(len(data)), Data: data}
		return stage.Send(ctx, c.out, it)
	}
	if len(c.seqsOf[b.DiffID]) > 0 && s.opts.Digests != nil {
		s.opts.Digests.Record(b.Digest.Encoded(), b.DiffID.Encoded())
	}
	var seqs []int
	for _, i := range c.seqsOf[b.DiffID] {
		if !c.have[i] && !c.skip[i] {
			seqs = append(seqs, i)
		}
		c.have[i] = true
	}
	if len(c.seqsOf[b.DiffID]) == 0 {
		c.stray = append(c.stray, b)
		return nil
	}
	if len(seqs) == 0 {
		err := removeFile(b.Path)
		b.Path = ""
		return err
	}
	sf := &sharedFile{path: b.Path}
	sf.refs.Store(int32(len(seqs)))
	b.Path = "" // the bodies own it now
	for _, i := range seqs {
		it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: b.DiffID.Encoded(), DiffID: b.DiffID, Size: b.USize,
			Body: &fileRef{f: sf, size: b.USize}}
		if err := c.order.Put(i, it); err != nil {
			_ = it.Body.Release()
			return fmt.Errorf("dockerpush image %s: layer %d: %w", s.ref, i, err)
		}
	}
	return nil
}

// flush sends the layers that are next in order and ready (or skipped).
func (c *collector) flush(ctx context.Context) error {
	for {
		it, ok := c.order.Pop()
		if !ok {
			return nil
		}
		if err := stage.Send(ctx, c.out, it); err != nil {
			// Send released the body.
			return err
		}
	}
}

// finish checks the manifest against what was received and sent.
func (c *collector) finish(ctx context.Context, raw []byte) error {
	s := c.s
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("dockerpush image %s: manifest: %w", s.ref, err)
	}
	zerolog.Ctx(ctx).Debug().Str("image", s.ref).Int("layers", len(m.Layers)).Msg("Manifest received")
	if m.Config.Digest != s.id {
		return fmt.Errorf("dockerpush image %s: %w: manifest config %s, image Id %s", s.ref, ErrPushed, m.Config.Digest, s.id)
	}
	if c.config == nil {
		return fmt.Errorf("dockerpush image %s: %w: Config blob %s not received", s.ref, ErrPushed, m.Config.Digest)
	}
	var cfg v1.Image
	if err := json.Unmarshal(c.config, &cfg); err != nil {
		return fmt.Errorf("dockerpush image %s: config: %w", s.ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("dockerpush image %s: %w: DiffID count (%d) does not match layer count (%d)", s.ref, ErrPushed, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	if len(m.Layers) != len(s.diffIDs) {
		return fmt.Errorf("dockerpush image %s: %w: %d layers pushed, the engine lists %d", s.ref, ErrPushed, len(m.Layers), len(s.diffIDs))
	}
	assumed := c.reg.assumed
	for i, l := range m.Layers {
		b := c.byDiges[l.Digest]
		if b == nil && c.skip[i] && assumed[l.Digest] == s.diffIDs[i] {
			continue // the engine did not send what it was told the registry has
		}
		if b == nil {
			return fmt.Errorf("dockerpush image %s: %w: Layer blob %s not received", s.ref, ErrPushed, l.Digest)
		}
		if b.DiffID != s.diffIDs[i] || cfg.RootFS.DiffIDs[i] != s.diffIDs[i] {
			return fmt.Errorf("dockerpush image %s: %w: layer %d blob %s uncompresses (%s) to %s, the image's DiffID is %s", s.ref, ErrPushed, i, l.Digest, b.Comp, b.DiffID, s.diffIDs[i])
		}
		if want := compressionOf(l.MediaType); want != "" && want != b.Comp {
			return fmt.Errorf("dockerpush image %s: %w: layer %d blob %s has media type %s but its content is %s", s.ref, ErrPushed, i, l.Digest, l.MediaType, b.Comp)
		}
	}
	if n := c.order.Next(); n != len(s.diffIDs) {
		// Every DiffID matched a blob, so every layer was sent.
		return fmt.Errorf("dockerpush image %s: %w: layer %d not received", s.ref, ErrPushed, n)
	}
	zerolog.Ctx(ctx).Info().Str("image", s.ref).Int("layers", len(m.Layers)).Msg("Fetch complete")
	return nil
}

// cleanup removes the files nobody took: layers not sent, stray blobs.
func (c *collector) cleanup() {
	c.order.Drain(func(it stage.Item) { _ = it.Release() })
	for _, b := range c.stray {
		_ = removeFile(b.Path)
	}
}

// compressionOf is the compression a layer media type names, "" when it
// names none this package knows (then the content's magic bytes decide).
func compressionOf(mediaType string) string {
	switch {
	case strings.HasSuffix(mediaType, ".gzip") || strings.HasSuffix(mediaType, "+gzip"):
		return compGzip
	case strings.HasSuffix(mediaType, ".zstd") || strings.HasSuffix(mediaType, "+zstd"):
		return compZstd
	case strings.HasSuffix(mediaType, ".tar"):
		return compNone
	}
	return ""
}

// sharedFile is an uncompressed layer file that several items may share (a
// layer the image holds more than once); the last release removes it.
type sharedFile struct {
	path string
	refs atomic.Int32
}

// fileRef is one item's share of a sharedFile.
type fileRef struct {
	f    *sharedFile
	size int64
	once sync.Once
	err  error
}

// Open opens the layer file.
func (r *fileRef) Open() (io.ReadCloser, error) { return os.Open(r.f.path) }

// FilePath is the layer file's path (stage.Filer).
func (r *fileRef) FilePath() string { return r.f.path }

// Release gives up this share; the last one removes the file. Safe to call
// twice.
func (r *fileRef) Release() error {
	r.once.Do(func() {
		if r.f.refs.Add(-1) == 0 {
			r.err = removeFile(r.f.path)
		}
	})
	return r.err
}
