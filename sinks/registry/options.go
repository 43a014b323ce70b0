package registry

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport"
)

// DefaultChunkSize is the most one PATCH streams unless Options.ChunkSize
// says otherwise (see transport.DefaultChunkSize).
const DefaultChunkSize = transport.DefaultChunkSize

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

	aheadMu  sync.Mutex
	ahead    map[digest.Digest]*headAhead      // HEADs sent when the manifest came
	early    map[digest.Digest]*headAhead      // HEADs the output sent before the image ran
	putAhead func(digest.Digest) (int64, bool) // what the output copied (size) or mounted (-1) before the image ran, or nil
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
