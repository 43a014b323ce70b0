package transport

import (
	"context"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// Size limits of the JSON documents read into memory. Layers are streamed
// and have none.
const (
	// MaxManifest bounds a manifest or an index (and a Quay API page).
	MaxManifest = 16 << 20
	// MaxConfig bounds an image config, as the archive sources do.
	MaxConfig = 64 << 20
	// maxToken bounds a token response.
	maxToken = 1 << 20
)

// ReadLimited reads r whole, failing with ErrTooLarge as soon as it holds
// more than limit bytes: never more than limit+1 bytes are read.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}

// BlobBytes fetches a small blob (a config) into memory: its descriptor
// must declare a size no larger than limit, and the download stops at one
// byte past that size (ErrSizeMismatch) and is verified against d.
func (r *Registry) BlobBytes(ctx context.Context, repo string, d digest.Digest, size, limit int64) ([]byte, error) {
	what := fmt.Sprintf("fetch blob %s from %s/%s", d, r.host, repo)
	switch {
	case size < 0:
		return nil, fmt.Errorf("%s: the descriptor declares no size (%d): %w", what, size, ErrSizeMismatch)
	case size > limit:
		return nil, fmt.Errorf("%s: declared size %d is over the limit of %d bytes: %w", what, size, limit, ErrTooLarge)
	}
	rc, err := r.Blob(ctx, repo, d, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The blob reader stops at size+1 bytes; the limit is a second guard.
	return ReadLimited(rc, limit)
}
