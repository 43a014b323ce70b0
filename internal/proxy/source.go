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
)

// pushed is an image pushed into the proxy, read back from its received
// blobs: a stage.Source. The blobs stay the store's; bodies release nothing.
type pushed struct {
	img        stage.Image
	manifest   []byte
	mediaType  string
	config     []byte
	cfgDigest  digest.Digest
	layers     []v1.Descriptor
	blobs      []*blob
	diffIDs    []digest.Digest
	compressed bool
	inflate    *inflate.Inflater
}

// newPushed checks manifest body against the received blobs and reads the
// config.
func newPushed(st *store, img stage.Image, body []byte, mediaType string) (*pushed, error) {
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", img, err)
	}
	cb := st.get(m.Config.Digest)
	if cb == nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, img, ErrBlobUnknown)
	}
	cfg, err := os.ReadFile(cb.Path)
	if err != nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, img, err)
	}
	var c v1.Image
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, img, err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: %d diff_ids, %d layers: %w", img, len(c.RootFS.DiffIDs), len(m.Layers), ErrLayerCount)
	}
	p := &pushed{img: img, manifest: body, mediaType: mediaType, config: cfg, cfgDigest: m.Config.Digest,
		layers: m.Layers, diffIDs: c.RootFS.DiffIDs}
	for _, l := range m.Layers {
		b := st.get(l.Digest)
		if b == nil {
			return nil, fmt.Errorf("layer %s of %s: %w", l.Digest, img, ErrBlobUnknown)
		}
		p.blobs = append(p.blobs, b)
	}
	for _, d := range p.diffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("image %s: diff_id %q: %w", img, d, err)
		}
	}
	return p, nil
}

// Name names the source in statistics.
func (p *pushed) Name() string { return "proxy" }

// UseCompressed makes the layer bodies offer their blobs as received, and
// sends the manifest received (stage.CompressedSource).
func (p *pushed) UseCompressed() { p.compressed = true }

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
			Body: &blobBody{b: p.blobs[i], desc: l, inflate: p.inflate}}
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// blobBody is a layer whose compressed blob is a file of the store. Open
// decompresses it (by media type, then by magic bytes); Release keeps it.
type blobBody struct {
	b       *blob
	desc    v1.Descriptor
	inflate *inflate.Inflater
}

func (b *blobBody) Release() error { return nil }

// Open gives the uncompressed tar.
func (b *blobBody) Open() (io.ReadCloser, error) {
	f, err := os.Open(b.b.Path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(4)
	mt := b.desc.MediaType
	switch {
	case strings.Contains(mt, "zstd") || bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("zstd blob %s: %w", b.b.Digest, err)
		}
		return &closers{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	case strings.Contains(mt, "gzip") || bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		// Open has no context: an igzip process ends with Close, or
		// with the proxy (Inflater.Close).
		zr, err := b.inflate.Gunzip(context.Background(), br, b.b.Size)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("gzip blob %s: %w", b.b.Digest, err)
		}
		return &closers{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	}
	return &closers{Reader: br, close: f.Close}, nil
}

// OpenCompressed gives the blob as received (stage.Compressed).
func (b *blobBody) OpenCompressed() (io.ReadCloser, string, error) {
	f, err := os.Open(b.b.Path)
	return f, b.desc.MediaType, err
}

// CompressedDescriptor describes the blob as received (registry.BlobOrigin).
func (b *blobBody) CompressedDescriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: b.desc.MediaType, Digest: b.b.Digest, Size: b.b.Size}
}

// Origin is no registry: the blob is local, so nothing can be mounted.
func (b *blobBody) Origin() (host, repo string) { return "", "" }

// OpenBlob opens the blob as received (registry.BlobOrigin).
func (b *blobBody) OpenBlob(context.Context) (io.ReadCloser, error) { return os.Open(b.b.Path) }

type closers struct {
	io.Reader
	close func() error
}

func (c *closers) Close() error { return c.close() }
