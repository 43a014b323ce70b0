package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/semaphore"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// A multi-image run fetches ahead: while -J images are being processed, the
// next ones' manifests and configs are fetched and, when the output is shared
// (a dir:// output), their layers downloaded into the scheduler's temporary
// files. An image's source then finds its manifest and config here and its
// layers as flights of the scheduler (shared, or skipped when the output has
// them by then), so an image slot no longer waits round trips for them.
// Nothing is sent to a sink ahead: only the image's own source does that.

// imageKey names a resolved image: what Source.resolve depends on.
type imageKey struct{ host, repo, tag, os, arch, variant string }

func (s *Source) key() imageKey {
	o := s.opts
	return imageKey{o.Host, o.Repo, o.Tag, o.OS, o.Architecture, o.Variant}
}

// ahead is what a prefetch left for one image's source.
type ahead struct {
	man v1.Manifest
	// raw is the manifest as fetched, for a passthrough copy that pushes it
	// unchanged.
	raw    transport.Manifest
	config digest.Digest
	cfg    []byte // nil until fetched
}

// prefetched returns the manifest fetched ahead for the source's image.
func (b *Blobs) prefetched(k imageKey) (ahead, bool) {
	if b == nil {
		return ahead{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.ahead[k]
	return a, ok
}

// aheadManifest is the manifest fetched ahead for s, if any.
func (s *Source) aheadManifest() (v1.Manifest, bool) {
	a, ok := s.opts.Blobs.prefetched(s.key())
	if ok {
		s.fetched = a.raw
	}
	return a.man, ok
}

// aheadConfig is the config d fetched ahead for s, if any.
func (s *Source) aheadConfig(d digest.Digest) ([]byte, bool) {
	a, ok := s.opts.Blobs.prefetched(s.key())
	if !ok || a.cfg == nil || a.config != d {
		return nil, false
	}
	return a.cfg, true
}

// Prefetched holds what Prefetch fetched for one image until Release.
type Prefetched struct {
	b      *Blobs
	key    imageKey
	budget *Budget
	once   sync.Once
	mu     sync.Mutex
	items  []stage.Item
	bytes  int64 // of budget held
}

// Release forgets the image's manifest and config and drops the references
// to the layer files held for it (a file is removed when its last holder
// releases it). Call it once the image's source has run (or will not);
// it is safe to call more than once and on nil.
func (p *Prefetched) Release() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		p.b.mu.Lock()
		delete(p.b.ahead, p.key)
		p.b.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, it := range p.items {
			_ = it.Release()
		}
		p.items = nil
		p.budget.release(p.bytes)
		p.bytes = 0
	})
}

// PrefetchOptions say what Prefetch fetches.
type PrefetchOptions struct {
	// Layers fetches the layers too, not only the manifest and config.
	Layers bool
	// Has (may be nil) reports the layers the destination has: those are
	// not fetched.
	Has func(name string) bool
	// Resolved, if not nil, is called once the manifest and config are
	// fetched (or could not be).
	Resolved func()
	// Manifest, if not nil, is called with the image's manifest once it is
	// fetched, beside the rest of the prefetch (which waits for it): a
	// caller can ask the destination about the image's blobs, or copy them
	// there, meanwhile. open gives each blob's stream from the source,
	// verified (the config's: the bytes the prefetch fetched, once it has).
	Manifest func(ctx context.Context, m v1.Manifest, open func(v1.Descriptor) transport.Opener)
	// Slots, if not nil, bounds the layer downloads of every prefetch
	// sharing it: one is held (sent) for each download. Waiters get slots
	// in the order they asked, so earlier images' layers come first and the
	// images ahead finish one after another, not all at once.
	Slots chan struct{}
	// Budget, if not nil, bounds the compressed bytes of the layers held
	// ahead by every prefetch sharing it, until they are released.
	Budget *Budget
}

// NewSlots makes the Slots of prefetches that download at most n layers
// at once (at least 1).
func NewSlots(n int) chan struct{} { return make(chan struct{}, max(n, 1)) }

// Budget is a byte budget shared by prefetches (PrefetchOptions.Budget):
// a layer fetched ahead holds its compressed size (at most the whole
// budget) from before it starts until the prefetch is released. Waiters
// are served in the order they asked.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// NewBudget makes a budget of size bytes (at least 1).
func NewBudget(size int64) *Budget {
	size = max(size, 1)
	return &Budget{sem: semaphore.NewWeighted(size), size: size}
}

func (b *Budget) acquire(ctx context.Context, n int64) (int64, error) {
	if b == nil {
		return 0, nil
	}
	n = min(max(n, 0), b.size)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

func (b *Budget) release(n int64) {
	if b != nil && n > 0 {
		b.sem.Release(n)
	}
}

// Prefetch fetches ahead what a source made with t and opts (opts.Blobs must
// be b) will ask for: its manifest and config, kept in b for that source,
// and, with po.Layers, its layers through b (opts.Workers at once). It returns when everything is fetched or ctx is done; the
// caller must Release what it returns.
//
// Errors are not reported: a prefetch that fails leaves the fetch to the
// image's source, which reports it as it would have without the prefetch.
func (b *Blobs) Prefetch(ctx context.Context, t *transport.Transport, opts Options, po PrefetchOptions) *Prefetched {
	layers, has, resolved := po.Layers, po.Has, po.Resolved
	opts.Blobs = b
	s := New(t, opts)
	p := &Prefetched{b: b, key: s.key(), budget: po.Budget}
	signal := sync.OnceFunc(func() {
		if resolved != nil {
			resolved()
		}
	})
	defer signal()
	man, err := s.resolve(ctx)
	if err != nil {
		return p
	}
	b.mu.Lock()
	b.ahead[p.key] = ahead{man: man, raw: s.fetched, config: man.Config.Digest}
	b.mu.Unlock()

	var cfg []byte // set before cfgDone is closed, when fetched
	cfgDone := make(chan struct{})
	wp := pool.New().WithContext(ctx).WithMaxGoroutines(s.opts.Workers)
	wp.Go(func(ctx context.Context) error {
		defer signal()
		defer close(cfgDone)
		c, err := s.fetchConfig(ctx, man.Config)
		if err != nil || !json.Valid(c) {
			return nil
		}
		cfg = c
		b.mu.Lock()
		if a, ok := b.ahead[p.key]; ok {
			a.cfg = c
			b.ahead[p.key] = a
		}
		b.mu.Unlock()
		return nil
	})
	if po.Manifest != nil {
		// Beside the config's fetch: the config's stream is the bytes
		// fetched, once they are.
		mp := pool.New().WithContext(ctx)
		mp.Go(func(ctx context.Context) error {
			po.Manifest(ctx, man, func(d v1.Descriptor) transport.Opener {
				if d.Digest != man.Config.Digest {
					return (&blobBody{s: s, desc: d}).OpenBlob
				}
				return func(ctx context.Context) (io.ReadCloser, error) {
					select {
					case <-cfgDone:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					if cfg == nil {
						return nil, fmt.Errorf("config %s of %s could not be fetched", man.Config.Digest, s.where())
					}
					return io.NopCloser(bytes.NewReader(cfg)), nil
				}
			})
			return nil
		})
		defer func() { _ = mp.Wait() }()
	}
	if layers {
		for i, l := range man.Layers {
			wp.Go(func(ctx context.Context) error {
				n, err := po.Budget.acquire(ctx, l.Size)
				if err != nil {
					return nil
				}
				p.mu.Lock()
				p.bytes += n
				p.mu.Unlock()
				it, err := b.layer(ctx, i, l.Digest, has, func(ctx context.Context) (stage.Item, error) {
					if po.Slots != nil {
						select {
						case po.Slots <- struct{}{}:
						case <-ctx.Done():
							return stage.Item{}, ctx.Err()
						}
						defer func() { <-po.Slots }()
					}
					return s.fetchLayer(ctx, i, l)
				})
				if err != nil {
					return nil
				}
				p.mu.Lock()
				p.items = append(p.items, it)
				p.mu.Unlock()
				return nil
			})
		}
	}
	_ = wp.Wait()
	return p
}
