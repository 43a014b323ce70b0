package registry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/stage"
)

// Passthrough (stage.CompressedSource): a sink that copies compressed blobs
// (a registry output) with no stage that changes content in between. Each
// layer's compressed blob is downloaded, its digest verified, into a
// temporary file, and nothing is decompressed: the body's OpenCompressed
// gives the file, its Open decompresses it lazily when someone asks. The
// manifest is sent as fetched (a stage.KindManifest item). The layer's
// DiffID is the one the config gives (the compressed digest is what was
// verified).

// UseCompressed turns passthrough on (stage.CompressedSource).
func (s *Source) UseCompressed() { s.compressed = true }

// sendManifest sends the manifest as fetched.
func (s *Source) sendManifest(ctx context.Context, out chan<- stage.Item) error {
	m := s.fetched
	return stage.Send(ctx, out, stage.Item{Seq: -2, Kind: stage.KindManifest, Name: m.MediaType, Size: -1, Data: m.Body})
}

// fetchCompressed downloads one layer's blob, verified, into a temporary
// file.
func (s *Source) fetchCompressed(ctx context.Context, seq int, d v1.Descriptor) (it stage.Item, err error) {
	f, err := os.CreateTemp(s.opts.TempDir, "occystrap-blob-*")
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
	defer rc.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	if err := f.Close(); err != nil {
		return it, fmt.Errorf("layer %s of %s: %w", d.Digest, s.where(), err)
	}
	zerolog.Ctx(ctx).Debug().Int("seq", seq).Str("digest", d.Digest.String()).Int64("bytes", n).Msg("Layer blob fetched")
	d.Size = n
	return stage.Item{
		Seq: seq, Kind: stage.KindLayer, Name: d.Digest.Encoded(), Size: -1,
		Body: &blobBody{FileBody: stage.FileBody{Path: f.Name(), Temp: true}, desc: d, host: s.opts.Host, repo: s.opts.Repo},
	}, nil
}

// blobBody is a layer kept compressed in a temporary file.
type blobBody struct {
	stage.FileBody
	desc       v1.Descriptor
	host, repo string
}

// OpenCompressed gives the blob as fetched (stage.Compressed).
func (b *blobBody) OpenCompressed() (io.ReadCloser, string, error) {
	f, err := b.FileBody.Open()
	return f, b.desc.MediaType, err
}

// CompressedDescriptor is the blob's descriptor from the manifest.
func (b *blobBody) CompressedDescriptor() v1.Descriptor { return b.desc }

// Origin is the registry and repository the blob came from.
func (b *blobBody) Origin() (host, repo string) { return b.host, b.repo }

// Open decompresses the blob.
func (b *blobBody) Open() (io.ReadCloser, error) {
	f, err := b.FileBody.Open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	dec, err := decompressor(b.desc.MediaType, br)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", b.desc.Digest, err)
	}
	return &closeBoth{ReadCloser: dec, f: f}, nil
}

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
