package registry

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/platform"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// accepted is the Accept list, in the original's order.
var accepted = []string{mediatype.DockerManifest, mediatype.DockerList, v1.MediaTypeImageManifest, v1.MediaTypeImageIndex}

// Options say which image to pull and how.
type Options struct {
	// Host is the registry's host[:port]; Repo the repository path; Tag a
	// tag or a digest.
	Host, Repo, Tag string
	// Platform chosen from a manifest list, matched as containerd does
	// (see internal/platform): arm64 is arm64/v8, arm is arm/v7.
	OS, Architecture, Variant string
	// Registry holds insecure and per-URI credentials.
	Registry transport.RegistryOptions
	// Workers is how many layers download at once (default 4).
	Workers int
	// TempDir holds the layer files ("" = the system's).
	TempDir string
	// Inflate gunzips layers: the run's one inflater (nil: Go's).
	Inflate *inflate.Inflater
	// Blobs, if set, is the run-wide scheduler shared with other images'
	// sources: a layer they share is fetched once (see Blobs).
	Blobs *Blobs
}

// Source is the registry:// source of one image.
type Source struct {
	opts Options
	reg  *transport.Registry
	win  *stage.Window
	has  func(name string) bool
	// compressed and fetched: see passthrough.go.
	compressed bool
	fetched    transport.Manifest
	// index is the manifest list the tag named, if it named one.
	index  *IndexInfo
	runCtx context.Context //nolint:containedctx // the run's, for lazy bodies
}

// New makes a source pulling through t.
func New(t *transport.Transport, opts Options) *Source {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.OS == "" {
		opts.OS = "linux"
	}
	if opts.Architecture == "" {
		opts.Architecture = "amd64"
	}
	if opts.Tag == "" {
		opts.Tag = "latest"
	}
	return &Source{opts: opts, reg: t.Registry(opts.Host, opts.Registry)}
}

// Options are the options the source was made with (defaults filled in).
func (s *Source) Options() Options { return s.opts }

// Accepted is the Accept list of manifest media types the source sends.
func Accepted() []string { return append([]string(nil), accepted...) }

// IsIndex reports whether mediaType is a manifest list or an OCI index.
func IsIndex(mediaType string) bool {
	return mediatype.IsIndex(mediaType)
}

// Top fetches what the source's tag names, a list not followed.
func (s *Source) Top(ctx context.Context) (transport.Manifest, error) {
	return s.reg.GetManifest(ctx, s.opts.Repo, s.opts.Tag, accepted)
}

// Index is the manifest list the tag named, once the source has resolved
// it (after Emit or Metadata); nil when the tag named a single image.
func (s *Source) Index() *IndexInfo { return s.index }

// Image names the image.
func (s *Source) Image() stage.Image { return stage.Image{Name: s.opts.Repo, Tag: s.opts.Tag} }

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "registry"}
}

// Wire takes what the engine allows (stage.Wirable): the reorder window of
// a sink that needs order; the destination's test for layers it already
// has (those are sent with a nil Body and not fetched); and passthrough
// (passthrough.go).
func (s *Source) Wire(w stage.Wiring) {
	s.win, s.has, s.compressed = w.Window, w.Has, w.Compressed
}

// Close releases nothing: the transport belongs to the process.
func (s *Source) Close() error { return nil }

func (s *Source) where() string {
	return fmt.Sprintf("%s/%s:%s", s.opts.Host, s.opts.Repo, s.opts.Tag)
}

// manifestTypeError keeps the original's message.
type manifestTypeError struct{ mediaType string }

func (e *manifestTypeError) Error() string {
	return "Unknown manifest content type " + e.mediaType + "!"
}

func (e *manifestTypeError) Is(target error) bool { return target == ErrManifestType }

// resolve fetches the manifest, following a list to the chosen platform.
func (s *Source) resolve(ctx context.Context) (v1.Manifest, error) {
	if man, ok := s.aheadManifest(); ok {
		return man, nil
	}
	m, err := s.reg.GetManifest(ctx, s.opts.Repo, s.opts.Tag, accepted)
	if err != nil {
		return v1.Manifest{}, s.notFound(ctx, err)
	}
	switch m.MediaType {
	case mediatype.DockerList, v1.MediaTypeImageIndex:
		var idx v1.Index
		if err := json.Unmarshal(m.Body, &idx); err != nil {
			return v1.Manifest{}, fmt.Errorf("parse manifest list of %s: %w", s.where(), err)
		}
		s.index = &IndexInfo{Digest: m.Digest, MediaType: m.MediaType, Manifests: idx.Manifests}
		i, err := s.choose(idx.Manifests)
		if err != nil {
			return v1.Manifest{}, err
		}
		pick := &idx.Manifests[i]
		zerolog.Ctx(ctx).Debug().Str("digest", pick.Digest.String()).Msg("Chose manifest for platform")
		m, err = s.reg.GetManifest(ctx, s.opts.Repo, pick.Digest.String(), accepted)
		if err != nil {
			return v1.Manifest{}, err
		}
		if m.MediaType != mediatype.DockerManifest && m.MediaType != v1.MediaTypeImageManifest {
			return v1.Manifest{}, &manifestTypeError{m.MediaType}
		}
	case mediatype.DockerManifest, v1.MediaTypeImageManifest:
	default:
		return v1.Manifest{}, &manifestTypeError{m.MediaType}
	}
	s.fetched = m
	var man v1.Manifest
	if err := json.Unmarshal(m.Body, &man); err != nil {
		return v1.Manifest{}, fmt.Errorf("parse manifest of %s: %w", s.where(), err)
	}
	return man, nil
}

// IndexInfo describes the manifest list (Docker) or index (OCI) a tag
// named, for info.
type IndexInfo struct {
	Digest    digest.Digest
	MediaType string
	Manifests []v1.Descriptor
}

// choose picks the entry of a list for the platform asked for.
func (s *Source) choose(ds []v1.Descriptor) (int, error) {
	have := make([]platform.Platform, len(ds))
	for i, d := range ds {
		have[i] = platform.FromOCI(d.Platform)
	}
	want := platform.Platform{OS: s.opts.OS, Architecture: s.opts.Architecture, Variant: s.opts.Variant}
	return platform.Choose(want, have)
}

// Emit sends the config, then every layer as it finishes.
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.where()).Logger()
	ctx = log.WithContext(ctx)

	// This source counts the bytes it downloads (fetchLayer, blobBody).
	accounting.FromContext(ctx).SetSourceFed()
	man, err := s.resolve(ctx)
	if err != nil {
		return err
	}
	for _, l := range man.Layers {
		accounting.FromContext(ctx).AddSize(l.Size)
	}
	if s.compressed {
		s.runCtx = ctx
		if err := s.sendManifest(ctx, out); err != nil {
			return err
		}
	}
	// The config and the layers download at once; the config is sent
	// first, and each layer waits for it (its DiffID is checked against
	// the config) before it is sent.
	var diffIDs []digest.Digest
	cfgSent := make(chan struct{})
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	p.Go(func(ctx context.Context) error {
		cfgBytes, err := s.fetchConfig(ctx, man.Config)
		if err != nil {
			return err
		}
		var cfg v1.Image
		if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
			return fmt.Errorf("parse config %s of %s: %w", man.Config.Digest, s.where(), err)
		}
		if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
			return fmt.Errorf("image %s: manifest has %d layers, config %d DiffIDs", s.where(), len(man.Layers), len(cfg.RootFS.DiffIDs))
		}
		diffIDs = cfg.RootFS.DiffIDs
		cfgItem := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: man.Config.Digest.Encoded() + ".json", Size: -1, Data: cfgBytes}
		if s.compressed {
			// The config's blob as it is in this registry (BlobOrigin),
			// so that a sink on the same registry mounts it.
			cfgItem.Body = &blobBody{s: s, desc: man.Config}
		}
		if err := stage.Send(ctx, out, cfgItem); err != nil {
			return err
		}
		close(cfgSent)
		return nil
	})
	p.Go(func(ctx context.Context) error {
		return s.fetchLayers(ctx, man.Layers, cfgSent, &diffIDs, out)
	})
	err = p.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// fetchLayers downloads the layers with Workers goroutines, each sent when
// it is done and the config has been sent.
func (s *Source) fetchLayers(ctx context.Context, layers []v1.Descriptor, cfgSent <-chan struct{}, diffIDs *[]digest.Digest, out chan<- stage.Item) error {
	// The window's credit is awaited with a context that a failed download
	// cancels: the credit for layers after a failed one never comes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(s.opts.Workers)
	for i, l := range layers {
		if err := s.win.Acquire(ctx, i); err != nil {
			break // ctx is done: Wait reports why, or the caller does
		}
		p.Go(func(ctx context.Context) (err error) {
			defer func() {
				if err != nil {
					cancel()
				}
			}()
			it, err := s.layer(ctx, i, l)
			if err != nil {
				return err
			}
			select {
			case <-cfgSent:
			case <-ctx.Done():
				_ = it.Release()
				return ctx.Err()
			}
			if it.Skipped() || s.compressed {
				// Skipped: not fetched. Passthrough: the compressed digest
				// is verified as the blob streams; the DiffID is the config's.
				it.DiffID = (*diffIDs)[i]
			}
			if want := (*diffIDs)[i]; it.DiffID != want {
				_ = it.Release()
				return fmt.Errorf("layer %s of %s: DiffID %s, config says %s: %w", l.Digest, s.where(), it.DiffID, want, ErrDiffID)
			}
			return stage.Send(ctx, out, it)
		})
	}
	if err := p.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// layer gives layer seq: skipped when the destination has it, else fetched
// (through the run-wide scheduler when there is one).
func (s *Source) layer(ctx context.Context, seq int, d v1.Descriptor) (stage.Item, error) {
	if s.opts.Blobs != nil && !s.compressed {
		// Passthrough bodies stream from the registry when read, so there is
		// no download to share: the destination's own run-wide dedup (a
		// blob pushed once, mounted elsewhere) does that work.
		return s.opts.Blobs.layer(ctx, seq, d.Digest, s.has, func(ctx context.Context) (stage.Item, error) {
			return s.fetchLayer(ctx, seq, d)
		})
	}
	if s.has != nil && s.has(d.Digest.Encoded()) {
		return stage.Item{Seq: seq, Kind: stage.KindLayer, Name: d.Digest.Encoded(), Size: -1}, nil
	}
	return s.fetchLayer(ctx, seq, d)
}

func (s *Source) fetchConfig(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if b, ok := s.aheadConfig(d.Digest); ok {
		return b, nil
	}
	return s.reg.BlobBytes(ctx, s.opts.Repo, d.Digest, d.Size, transport.MaxConfig)
}

// fetchLayer streams one layer into a temporary file: digest checked,
// decompressed, DiffID computed.
func (s *Source) fetchLayer(ctx context.Context, seq int, d v1.Descriptor) (it stage.Item, err error) {
	if s.compressed {
		return s.fetchCompressed(ctx, seq, d)
	}
	f, err := tempname.Create(s.opts.TempDir, "layer", ".tar")
	if err != nil {
		return it, fmt.Errorf("layer %s of %s: temporary file: %w", d.Digest, s.where(), err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	rc, err := s.reg.Blob(ctx, s.opts.Repo, d.Digest, d.Size)
	if err != nil {
		return it, err
	}
	acc := accounting.FromContext(ctx)
	acc.Expect(d.Size)
	rc = acc.Reader(rc)
	defer rc.Close()

	br := bufio.NewReaderSize(rc, 256<<10)
	dec, err := decompressor(ctx, s.opts.Inflate, d, br)
	if err != nil {
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	h := sha256.New()
	fw := &writeErr{w: f}
	n, err := io.Copy(io.MultiWriter(fw, h), dec)
	if cerr := dec.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A corrupt blob usually trips the decompressor first; the digest
		// check at the blob's end names the real cause. A failed write
		// (a full disk) stops here: nothing more is read.
		if fw.err == nil {
			if _, derr := io.Copy(io.Discard, br); errors.Is(derr, transport.ErrDigestMismatch) {
				err = derr
			}
		}
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	// Read what the decompressor left (padding, trailers) so the digest of
	// the whole blob is checked.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	if err := f.Close(); err != nil {
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	got := digest.NewDigest(digest.SHA256, h)
	zerolog.Ctx(ctx).Debug().Int("seq", seq).Str("digest", d.Digest.String()).Int64("bytes", n).Msg("Layer fetched")
	return stage.Item{
		Seq: seq, Kind: stage.KindLayer, Name: d.Digest.Encoded(), DiffID: got, Size: n,
		Body: &stage.FileBody{Path: f.Name(), Temp: true},
	}, nil
}

// decompressor picks the decompression from the media type; an unknown type
// is sniffed (gzip, zstd, else plain tar). gzip goes through z; an igzip
// process ends with ctx.
func decompressor(ctx context.Context, z *inflate.Inflater, d v1.Descriptor, br *bufio.Reader) (io.ReadCloser, error) {
	mediaType := d.MediaType
	kind := ""
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		kind = "gzip"
	case strings.HasSuffix(mediaType, "zstd"):
		kind = "zstd"
	case mediaType == v1.MediaTypeImageLayer || mediaType == mediatype.DockerTar:
		kind = "tar"
	default:
		magic, _ := br.Peek(4)
		switch {
		case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
			kind = "gzip"
		case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
			kind = "zstd"
		default:
			kind = "tar"
		}
	}
	switch kind {
	case "gzip":
		zr, err := z.Gunzip(ctx, br, d.Size)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return zr, nil
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// notFound tells, when the registry has no manifest for the tag, an unknown
// tag from an unknown repository (registries answer both with 404 and often
// the same MANIFEST_UNKNOWN): it lists the repository's tags.
func (s *Source) notFound(ctx context.Context, err error) error {
	if !errors.Is(err, transport.ErrNotFound) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) && te.Has(transport.CodeNameUnknown) {
		return fmt.Errorf("%w: %w", err, ErrRepositoryUnknown)
	}
	tags, terr := s.reg.Tags(ctx, s.opts.Repo)
	switch {
	case terr == nil && len(tags) > 0:
		shown := tags
		if len(shown) > 5 {
			shown = append(shown[:5:5], "…")
		}
		return fmt.Errorf("%w: %w (tag %q; it has %s)", err, ErrTagUnknown, s.opts.Tag, strings.Join(shown, ", "))
	case terr == nil, errors.Is(terr, transport.ErrNotFound):
		return fmt.Errorf("%w: %w", err, ErrRepositoryUnknown)
	}
	return err
}

// writeErr remembers the error of a failed write, so that a copy's error
// can be told apart as the writer's rather than the reader's.
type writeErr struct {
	w   io.Writer
	err error
}

func (w *writeErr) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
