package registry

import (
	"bufio"
	"context"
	"fmt"
	"io"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/stage"
)

// Passthrough (stage.Wiring.Compressed): a sink that copies compressed blobs
// (a registry output) with no stage that changes content in between. Then
// nothing is downloaded ahead: each layer is sent at once with a body that
// streams its blob from the registry when, and only when, someone reads it
// (the digest verified while it streams, a lost connection resumed). A sink
// that finds the blob already in the destination, or mounts it, never
// downloads it; one that copies it streams it straight into the upload, with
// no temporary file and nothing decompressed. OpenBlob takes the reader's
// context; Open (the uncompressed tar, for a stage that reads layers, such
// as search) and OpenCompressed use the run's context, kept from Emit. Each
// open downloads the blob again. The manifest is sent as fetched (a
// stage.KindManifest item). A layer's DiffID is the one the config gives
// (the compressed digest is what is verified). The config item, its bytes
// in Data as always, also has a body: its blob in this registry, so that a
// sink on the same registry can mount it (BlobOrigin) rather than upload.

// sendManifest sends the manifest as fetched.
func (s *Source) sendManifest(ctx context.Context, out chan<- stage.Item) error {
	m := s.fetched
	return stage.Send(ctx, out, stage.Item{Seq: -2, Kind: stage.KindManifest, Name: m.MediaType, Size: -1, Data: m.Body})
}

// fetchCompressed makes the lazy body of one layer.
func (s *Source) fetchCompressed(_ context.Context, seq int, d v1.Descriptor) (stage.Item, error) {
	return stage.Item{
		Seq: seq, Kind: stage.KindLayer, Name: d.Digest.Encoded(), Size: -1,
		Body: &blobBody{s: s, desc: d},
	}, nil
}

// blobBody is a layer's blob, still in the source registry.
type blobBody struct {
	s    *Source
	desc v1.Descriptor
}

// OpenBlob streams the compressed blob, verified, under ctx; its bytes are
// counted in the image ctx carries.
func (b *blobBody) OpenBlob(ctx context.Context) (io.ReadCloser, error) {
	rc, err := b.s.reg.Blob(ctx, b.s.opts.Repo, b.desc.Digest, b.desc.Size)
	if err != nil {
		return nil, err
	}
	acc := accounting.FromContext(ctx)
	acc.Expect(b.desc.Size)
	return acc.Reader(rc), nil
}

// OpenCompressed gives the blob as stored (stage.Compressed).
func (b *blobBody) OpenCompressed() (io.ReadCloser, string, error) {
	rc, err := b.OpenBlob(b.s.runCtx)
	return rc, b.desc.MediaType, err
}

// CompressedDescriptor is the blob's descriptor from the manifest.
func (b *blobBody) CompressedDescriptor() v1.Descriptor { return b.desc }

// Origin is the registry and repository the blob came from.
func (b *blobBody) Origin() (host, repo string) { return b.s.opts.Host, b.s.opts.Repo }

// Open streams the blob and decompresses it.
func (b *blobBody) Open() (io.ReadCloser, error) {
	rc, err := b.OpenBlob(b.s.runCtx)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 256<<10)
	dec, err := decompressor(b.s.runCtx, b.s.opts.Inflate, b.desc, br)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("layer %s of %s: %w", b.desc.Digest, b.s.where(), err)
	}
	return &closeBoth{ReadCloser: dec, f: rc}, nil
}

// Release holds nothing.
func (b *blobBody) Release() error { return nil }

type closeBoth struct {
	io.ReadCloser
	f io.Closer
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}
