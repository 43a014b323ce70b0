package registry

import (
	"context"
	"encoding/json"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/transport"
)

// blobsInFlight bounds the blobs one sink works on at once, and
// requestsAhead the HEADs (and copies and mounts) sent ahead for one image
// at once: an image has tens of blobs, a hostile manifest may name
// thousands, and each is a request.
const (
	blobsInFlight = 64
	requestsAhead = 16
)

// Ahead bounds, run-wide, the requests a run's outputs send ahead of
// their images' turns (Output.HeadAhead): the HEADs, and the copies, which
// take the run's download slots (shared with the source's downloads
// ahead). Without a run-wide bound each of the lookahead's dozens of
// images would send its HEADs at once, hundreds of requests against one
// registry; with it they go about in the order the images were prepared.
// A nil *Ahead bounds nothing.
type Ahead struct {
	slots, heads chan struct{}
}

// NewAhead makes the bounds of a run: slots is its download slots (nil:
// unbounded), and twice as many HEADs go out at once.
func NewAhead(slots chan struct{}) *Ahead {
	return &Ahead{slots: slots, heads: make(chan struct{}, 2*max(cap(slots), 1))}
}

// head and slot take one of the bounds (nothing on a nil Ahead); done
// gives it back.
func (a *Ahead) head(ctx context.Context) (done func(), err error) {
	if a == nil {
		return func() {}, ctx.Err()
	}
	return acquire(ctx, a.heads)
}

func (a *Ahead) slot(ctx context.Context) (done func(), err error) {
	if a == nil {
		return func() {}, ctx.Err()
	}
	return acquire(ctx, a.slots)
}

// headAhead is a HEAD sent ahead of its blob: done is closed when there
// and err are set.
type headAhead struct {
	done  chan struct{}
	there bool
	err   error
}

// headAhead sends, when the source's manifest comes (passthrough), a HEAD
// for its config and each layer, before the source sends them: the
// answers are ready when the blobs come, and ensureBlob uses them.
func (s *Sink) headAhead(ctx context.Context, p *pool.ContextPool, body []byte) {
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil || m.Config.Digest.Validate() != nil {
		return
	}
	todo := map[digest.Digest]*headAhead{}
	s.aheadMu.Lock()
	s.ahead = map[digest.Digest]*headAhead{}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if d.Digest.Validate() != nil || s.ahead[d.Digest] != nil {
			continue
		}
		if h := s.early[d.Digest]; h != nil {
			s.ahead[d.Digest] = h // sent before the image ran (Output.HeadAhead)
			continue
		}
		h := &headAhead{done: make(chan struct{})}
		s.ahead[d.Digest] = h
		todo[d.Digest] = h
	}
	s.aheadMu.Unlock()
	for d, h := range todo { // p may be full: not under aheadMu
		p.Go(func(ctx context.Context) error {
			defer close(h.done)
			h.there, _, h.err = s.reg.BlobExists(ctx, s.opts.Repo, d)
			return nil // ensureBlob sends its own HEAD after a failed one
		})
	}
}

// headAnswered says whether the HEAD sent ahead for d has its answer.
func (s *Sink) headAnswered(d digest.Digest) bool {
	s.aheadMu.Lock()
	h := s.ahead[d]
	s.aheadMu.Unlock()
	if h == nil {
		return false
	}
	select {
	case <-h.done:
		return h.err == nil
	default:
		return false
	}
}

// exists says whether the destination's repository has blob d: the HEAD
// sent ahead for it, else one now.
func (s *Sink) exists(ctx context.Context, d digest.Digest) (bool, error) {
	s.aheadMu.Lock()
	h := s.ahead[d]
	s.aheadMu.Unlock()
	if h != nil {
		select {
		case <-h.done:
			if h.err == nil {
				return h.there, nil
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	there, _, err := s.reg.BlobExists(ctx, s.opts.Repo, d)
	return there, err
}

// HeadAhead sends, before the image is run, a HEAD to the output's
// repository for each of descs (a source manifest's config and layers,
// for a copy that pushes them unchanged): a bulk run calls it while the
// image waits for its turn, so that its sink finds the answers ready
// rather than spending its first round trip on them; with copyFrom nil,
// that is all it does. Otherwise the blobs the repository lacks are put
// there too: one for which copyFrom gives an opener (a blob no other image
// of the run has) is copied, taking one of ahead's slots for the
// transfer; any other is mounted from the repository the run pushes it
// to, once it has. What the image alone brings thus moves before its
// turn, which is left with its manifest. It returns once every request
// has answered, or when ctx is done (a blob waiting for another image's
// push waits for that or for ctx); what failed or did not happen is done
// by the sink. Call it before Sink.
func (o *Output) HeadAhead(ctx context.Context, descs []v1.Descriptor, copyFrom func(v1.Descriptor) transport.Opener, ahead *Ahead) {
	reg := o.t.Registry(o.opts.Host, o.opts.Registry)
	type blob struct {
		d v1.Descriptor
		h *headAhead
	}
	var todo []blob
	o.mu.Lock()
	for _, d := range descs {
		if d.Digest.Validate() != nil || o.early[d.Digest] != nil {
			continue
		}
		h := &headAhead{done: make(chan struct{})}
		o.early[d.Digest] = h
		todo = append(todo, blob{d, h})
	}
	o.mu.Unlock()
	// Not under o.mu: a full pool waits for requests that take it.
	p := pool.New().WithContext(ctx).WithMaxGoroutines(requestsAhead)
	for _, b := range todo {
		d, h := b.d, b.h
		p.Go(func(ctx context.Context) error {
			var there bool
			done, err := ahead.head(ctx)
			if err == nil {
				there, _, err = reg.BlobExists(ctx, o.opts.Repo, d.Digest)
				done()
			}
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			h.there, h.err = there, err
			close(h.done)
			if err != nil || there || copyFrom == nil {
				return nil
			}
			if open := copyFrom(d); open != nil {
				o.copyAhead(ctx, d, open, ahead)
				return nil
			}
			// Another image's blob: mounted once that image (or its
			// copy ahead) has pushed it, unless this image's turn has
			// come and its sink has seen to it by then.
			if o.opts.Pushed.await(ctx, o.opts.Host, d.Digest) != nil || o.opts.Pushed.in(o.opts.Host, d.Digest, o.opts.Repo) {
				return nil
			}
			if from, ok := o.opts.Pushed.elsewhere(o.opts.Host, d.Digest, o.opts.Repo); ok {
				o.mountAhead(ctx, reg, d.Digest, from)
			}
			return nil
		})
	}
	_ = p.Wait()
}

// copyAhead copies blob d into the output's repository, under the run's
// claim on it, and records it as this run's upload; a blob a sink pushed
// meanwhile is mounted instead (or left, if it was pushed here).
func (o *Output) copyAhead(ctx context.Context, d v1.Descriptor, open transport.Opener, ahead *Ahead) {
	done, err := ahead.slot(ctx)
	if err != nil {
		return
	}
	defer done()
	release, err := o.opts.Pushed.claim(ctx, o.opts.Host, d.Digest)
	if err != nil {
		return
	}
	if o.opts.Pushed.in(o.opts.Host, d.Digest, o.opts.Repo) {
		release() // the image's sink was first
		return
	}
	if from, ok := o.opts.Pushed.elsewhere(o.opts.Host, d.Digest, o.opts.Repo); ok {
		release() // pushed by a sink meanwhile: mounted instead
		o.mountAhead(ctx, o.t.Registry(o.opts.Host, o.opts.Registry), d.Digest, from)
		return
	}
	defer release()
	r, err := New(o.t, o.opts).put(ctx, open, transport.BlobPut{Digest: d.Digest, Size: d.Size})
	if err != nil || r.Digest != d.Digest || r.Size != d.Size {
		return
	}
	o.mu.Lock()
	o.put[d.Digest] = r.Size // before the record a sink checks
	o.mu.Unlock()
	o.opts.Pushed.Add(o.opts.Host, d.Digest, o.opts.Repo)
}

// mountAhead mounts blob d, which this run pushed to repository from of
// the registry, into the output's repository. A refused mount leaves the
// blob to the sink; the session the registry opened instead is cancelled.
func (o *Output) mountAhead(ctx context.Context, reg *transport.Registry, d digest.Digest, from string) {
	release, err := o.opts.Pushed.claimIn(ctx, o.opts.Host, d, o.opts.Repo)
	if err != nil {
		return
	}
	defer release()
	if o.opts.Pushed.in(o.opts.Host, d, o.opts.Repo) {
		return // the image's sink was first
	}
	mounted, up, err := reg.MountBlob(ctx, o.opts.Repo, d, from)
	switch {
	case err != nil:
	case mounted:
		o.mu.Lock()
		o.put[d] = -1 // before the record a sink checks
		o.mu.Unlock()
		o.opts.Pushed.Add(o.opts.Host, d, o.opts.Repo)
	case up != nil:
		_ = up.Cancel(ctx) // best effort: registries expire sessions too
	}
}

// putAhead says whether HeadAhead put blob d in the repository: n is the
// size it copied, or -1 when it mounted the blob.
func (o *Output) putAhead(d digest.Digest) (n int64, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok = o.put[d]
	return n, ok
}
