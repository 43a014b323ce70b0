package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// blobRef is a blob named by a manifest pushed into the proxy: a file of
// the store, or the downstream's copy when the client skipped the upload
// because the proxy answered its HEAD from the downstream.
//
// It keeps the context of the manifest PUT that made it, because
// stage.Body.Open takes none; it is used only during that request.
type blobRef struct {
	desc  v1.Descriptor
	local *blob // nil: the downstream's
	down  *transport.Registry
	repo  string // the downstream repository
	ctx   context.Context
}

// open streams the blob as stored (compressed).
func (b *blobRef) open(ctx context.Context) (io.ReadCloser, error) {
	if b.local != nil {
		return os.Open(b.local.Path)
	}
	return b.down.Blob(ctx, b.repo, b.desc.Digest, b.desc.Size)
}

// read reads a small blob (a config) whole.
func (b *blobRef) read(ctx context.Context) ([]byte, error) {
	rc, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifest+1))
}

// size is the blob's size as stored.
func (b *blobRef) size() int64 {
	if b.local != nil {
		return b.local.Size
	}
	return b.desc.Size
}

// pushed is an image pushed into the proxy, read back from its blobs: a
// stage.Source. The blobs stay the store's; bodies release nothing.
type pushed struct {
	img        stage.Image
	manifest   []byte
	mediaType  string
	config     []byte
	cfgDigest  digest.Digest
	layers     []*blobRef
	diffIDs    []digest.Digest
	compressed bool
	inflate    *inflate.Inflater
}

// imageConfigTypes are the config media types of images the proxy can
// read layer by layer ("" for a manifest that names none).
var imageConfigTypes = map[string]bool{
	"": true, v1.MediaTypeImageConfig: true, mediatype.DockerConfig: true,
}

// isLayerMediaType: a Docker or OCI image layer (a tar, compressed or not).
func isLayerMediaType(mt string) bool {
	return mt == "" || mediatype.IsLayer(mt)
}

// newPushed reads the config of a pushed image manifest m and checks it
// against the layers. An error wrapping ErrUninterpretable is an image
// (or artifact) the proxy cannot read layer by layer.
func newPushed(ctx context.Context, img stage.Image, body []byte, mediaType string, m v1.Manifest, cfg *blobRef, layers []*blobRef) (*pushed, error) {
	if !imageConfigTypes[m.Config.MediaType] {
		return nil, fmt.Errorf("config media type %q: %w", m.Config.MediaType, ErrUninterpretable)
	}
	for _, l := range m.Layers {
		if !isLayerMediaType(l.MediaType) {
			return nil, fmt.Errorf("layer media type %q: %w", l.MediaType, ErrUninterpretable)
		}
	}
	raw, err := cfg.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, img, err)
	}
	var c v1.Image
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("config %s is not an image config (%v): %w", m.Config.Digest, err, ErrUninterpretable)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%d diff_ids for %d layers: %w", len(c.RootFS.DiffIDs), len(m.Layers), ErrUninterpretable)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("diff_id %q (%v): %w", d, err, ErrUninterpretable)
		}
	}
	return &pushed{img: img, manifest: body, mediaType: mediaType, config: raw, cfgDigest: m.Config.Digest,
		layers: layers, diffIDs: c.RootFS.DiffIDs}, nil
}

// Properties names the source in statistics.
func (p *pushed) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "proxy"}
}

// Wire with Compressed makes the layer bodies offer their blobs as
// received, and sends the manifest received (stage.Wirable).
func (p *pushed) Wire(w stage.Wiring) { p.compressed = w.Compressed }

// Emit sends the manifest (passthrough only), the config, then the layers.
func (p *pushed) Emit(ctx context.Context, out chan<- stage.Item) error {
	if p.compressed {
		if err := stage.Send(ctx, out, stage.Item{Seq: -2, Kind: stage.KindManifest, Name: p.mediaType, Data: p.manifest}); err != nil {
			return err
		}
	}
	if err := stage.Send(ctx, out, stage.Item{Seq: -1, Kind: stage.KindConfig, Name: p.cfgDigest.Encoded() + ".json", Data: p.config}); err != nil {
		return err
	}
	for i, l := range p.layers {
		it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: p.diffIDs[i].Encoded(), DiffID: p.diffIDs[i], Size: -1,
			Body: &blobBody{ref: l, inflate: p.inflate}}
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// blobBody is a layer of a pushed image. Open decompresses it (by media
// type, then by magic bytes) with the proxy's inflater; Release keeps it.
type blobBody struct {
	ref     *blobRef
	inflate *inflate.Inflater
}

func (b *blobBody) Release() error { return nil }

// Open gives the uncompressed tar.
func (b *blobBody) Open() (io.ReadCloser, error) {
	f, err := b.ref.open(b.ref.ctx)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(4)
	mt := b.ref.desc.MediaType
	d := b.ref.desc.Digest
	switch {
	case strings.Contains(mt, "zstd") || bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("zstd blob %s: %w", d, err)
		}
		return &closers{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	case strings.Contains(mt, "gzip") || bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		// Under the manifest PUT's context (Open takes none); an igzip
		// process also ends with Close, or with the proxy.
		zr, err := b.inflate.Gunzip(b.ref.ctx, br, b.ref.size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("gzip blob %s: %w", d, err)
		}
		return &closers{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	}
	return &closers{Reader: br, close: f.Close}, nil
}

// OpenCompressed gives the blob as received (stage.Compressed).
func (b *blobBody) OpenCompressed() (io.ReadCloser, string, error) {
	rc, err := b.ref.open(b.ref.ctx)
	return rc, b.ref.desc.MediaType, err
}

// CompressedDescriptor describes the blob as received (registry.BlobOrigin).
func (b *blobBody) CompressedDescriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: b.ref.desc.MediaType, Digest: b.ref.desc.Digest, Size: b.ref.size()}
}

// Origin is the downstream repository for a blob the downstream holds
// (the sink then finds it there), none for a local file.
func (b *blobBody) Origin() (host, repo string) {
	if b.ref.local != nil {
		return "", ""
	}
	return b.ref.down.Host(), b.ref.repo
}

// OpenBlob opens the blob as received (registry.BlobOrigin).
func (b *blobBody) OpenBlob(ctx context.Context) (io.ReadCloser, error) { return b.ref.open(ctx) }

type closers struct {
	io.Reader
	close func() error
}

func (c *closers) Close() error { return c.close() }
