package registry

import (
	"context"
	"encoding/json"
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
	// Slots, if not nil, bounds the layer downloads of every prefetch
	// sharing it: one is held (sent) for each download. Waiters get slots
	// in the order they asked, so earlier images' layers come first and the
	// images ahead finish one after another, not all at once.
	Slots chan struct{}
	// Budget, if not nil, bounds the compressed bytes of the layers held
	// ahead by every prefetch sharing it, until they are released.
	Budget *Budget
}

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

	wp := pool.New().WithContext(ctx).WithMaxGoroutines(s.opts.Workers)
	wp.Go(func(ctx context.Context) error {
		defer signal()
		cfg, err := s.fetchConfig(ctx, man.Config)
		if err != nil || !json.Valid(cfg) {
			return nil
		}
		b.mu.Lock()
		if a, ok := b.ahead[p.key]; ok {
			a.cfg = cfg
			b.ahead[p.key] = a
		}
		b.mu.Unlock()
		return nil
	})
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

// Lookahead schedules the prefetches of a multi-image run: images are
// numbered 0, 1, ... in the order they are added (Add), which is the order
// they are processed in, and image i is fetched ahead once fewer than depth
// images are fetched ahead or being processed with what was fetched for
// them. Images may be added while earlier ones are fetched (as they are
// resolved). The processing of image i calls Take before it starts (it
// waits until a prefetch that started has the manifest and config, never
// for one that has not started: that image then fetches everything itself)
// and Finished after it ends.
//
// Run is the feeder; the caller runs it on a pool it owns, with a context
// it cancels once every image is processed (or the run fails), then calls
// ReleaseAll.
type Lookahead struct {
	fetch  func(ctx context.Context, i int, resolved func()) *Prefetched
	tokens chan struct{}
	more   chan struct{} // a signal: an image was added, or Close called

	mu     sync.Mutex
	slots  []*lookSlot
	closed bool
}

// lookSlot is one image's prefetch.
type lookSlot struct {
	mu     sync.Mutex
	state  int // 0 not started, 1 fetched ahead, 2 processed without
	ready  chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
	held   *Prefetched
}

// NewLookahead schedules images, at most depth (at least 1) at once; fetch
// is the prefetch of image i (see Blobs.Prefetch).
func NewLookahead(depth int, fetch func(ctx context.Context, i int, resolved func()) *Prefetched) *Lookahead {
	return &Lookahead{fetch: fetch, tokens: make(chan struct{}, max(depth, 1)), more: make(chan struct{}, 1)}
}

// Add adds the next image.
func (l *Lookahead) Add() {
	l.mu.Lock()
	l.slots = append(l.slots, &lookSlot{ready: make(chan struct{}), done: make(chan struct{})})
	l.mu.Unlock()
	l.signal()
}

// Close says no image will be added.
func (l *Lookahead) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}

func (l *Lookahead) signal() {
	select {
	case l.more <- struct{}{}:
	default:
	}
}

// slot is image i's slot once it is added; nil when none will be.
func (l *Lookahead) slot(ctx context.Context, i int) *lookSlot {
	for {
		l.mu.Lock()
		n, closed := len(l.slots), l.closed
		var sl *lookSlot
		if i < n {
			sl = l.slots[i]
		}
		l.mu.Unlock()
		if sl != nil || closed {
			return sl
		}
		select {
		case <-l.more:
		case <-ctx.Done():
			return nil
		}
	}
}

// Run starts the prefetches in order as images are added and tokens free
// up, until every image has been started or ctx is done, and returns when
// the prefetches it started have.
func (l *Lookahead) Run(ctx context.Context) error {
	p := pool.New()
	defer p.Wait()
	for i := 0; ; i++ {
		sl := l.slot(ctx, i)
		if sl == nil {
			return nil
		}
		select {
		case l.tokens <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		sl.mu.Lock()
		if sl.state != 0 { // already being processed without
			sl.mu.Unlock()
			<-l.tokens
			continue
		}
		sl.state = 1
		pctx, cancel := context.WithCancel(ctx)
		sl.cancel = cancel
		sl.mu.Unlock()
		p.Go(func() {
			defer close(sl.done)
			defer cancel()
			resolved := sync.OnceFunc(func() { close(sl.ready) })
			defer resolved()
			held := l.fetch(pctx, i, resolved)
			sl.mu.Lock()
			sl.held = held
			sl.mu.Unlock()
		})
	}
}

// at is image i's slot; i must have been added.
func (l *Lookahead) at(i int) *lookSlot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slots[i]
}

// Take is called before image i (added) is processed: it waits for the
// manifest and config of a prefetch that started, or marks i as processed
// without one.
func (l *Lookahead) Take(ctx context.Context, i int) error {
	sl := l.at(i)
	sl.mu.Lock()
	if sl.state == 0 {
		sl.state = 2
		sl.mu.Unlock()
		return nil
	}
	sl.mu.Unlock()
	select {
	case <-sl.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Finished is called once image i is processed (or failed): its prefetch is
// stopped and what it holds released, and its token freed.
func (l *Lookahead) Finished(i int) {
	sl := l.at(i)
	sl.mu.Lock()
	state := sl.state
	sl.mu.Unlock()
	if state != 1 {
		return
	}
	sl.cancel()
	<-sl.done
	sl.mu.Lock()
	held := sl.held
	sl.mu.Unlock()
	held.Release()
	<-l.tokens
}

// ReleaseAll releases what prefetches still hold, for images that were
// never processed; call it after Run has returned.
func (l *Lookahead) ReleaseAll() {
	l.mu.Lock()
	slots := l.slots
	l.mu.Unlock()
	for _, sl := range slots {
		sl.mu.Lock()
		held := sl.held
		sl.mu.Unlock()
		held.Release()
	}
}
