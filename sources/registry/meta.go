package registry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// Metadata is an image's manifest and config, fetched without its layers
// (for info and check).
type Metadata struct {
	// Manifest is the image manifest as fetched (the platform's, when the
	// tag names a list) and MediaType its Content-Type.
	Manifest  []byte
	MediaType string
	// Parsed is the manifest's config and layer descriptors.
	Parsed v1.Manifest
	// Config is the config blob as the registry sent it, not verified
	// against its digest: check compares them and reports a mismatch.
	Config []byte
}

// Metadata fetches the manifest and the config.
func (s *Source) Metadata(ctx context.Context) (Metadata, error) {
	man, err := s.resolve(ctx)
	if err != nil {
		return Metadata{}, err
	}
	md := Metadata{Manifest: s.fetched.Body, MediaType: s.fetched.MediaType, Parsed: man}
	d := man.Config
	if d.Digest == "" {
		return md, nil
	}
	what := fmt.Sprintf("fetch config %s from %s", d.Digest, s.where())
	resp, err := s.reg.Do(ctx, transport.Request{
		Method: http.MethodGet,
		URL:    s.reg.URL("/v2/" + s.opts.Repo + "/blobs/" + d.Digest.String()),
		Scope:  "repository:" + s.opts.Repo + ":pull",
	})
	if err != nil {
		return md, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return md, fmt.Errorf("%s: %s", what, resp.Status)
	}
	// The body is read no further than the declared size (plus one byte,
	// to see that it is longer); a descriptor without a size gets the
	// general limit. The digest is left for the checks to compare.
	limit := int64(transport.MaxConfig)
	if d.Size >= 0 && d.Size < limit {
		limit = d.Size
	}
	b, err := transport.ReadLimited(resp.Body, limit)
	if err != nil {
		if errors.Is(err, transport.ErrTooLarge) && limit == d.Size {
			err = fmt.Errorf("longer than its declared %d bytes: %w", d.Size, transport.ErrSizeMismatch)
		}
		return md, fmt.Errorf("%s: %w", what, err)
	}
	md.Config = b
	return md, nil
}

// LayerBody is layer d as a body that downloads the blob, verified, and
// decompresses it each time it is opened, under ctx. Nothing is stored.
func (s *Source) LayerBody(ctx context.Context, d v1.Descriptor) stage.Body {
	return &lazyLayer{s: s, ctx: ctx, desc: d}
}

type lazyLayer struct {
	s    *Source
	ctx  context.Context //nolint:containedctx // the run's: Body.Open takes none
	desc v1.Descriptor
}

func (b *lazyLayer) Open() (io.ReadCloser, error) {
	rc, err := b.s.reg.Blob(b.ctx, b.s.opts.Repo, b.desc.Digest, b.desc.Size)
	if err != nil {
		return nil, err
	}
	dec, err := decompressor(b.ctx, b.s.opts.Inflate, b.desc, bufio.NewReaderSize(rc, 256<<10))
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("layer %s of %s: %w", b.desc.Digest, b.s.where(), err)
	}
	return &closeBoth{ReadCloser: dec, f: rc}, nil
}

func (b *lazyLayer) Release() error { return nil }
