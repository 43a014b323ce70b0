package registry

import (
	"context"
	"encoding/json"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/transport"
)

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
	s.aheadMu.Lock()
	defer s.aheadMu.Unlock()
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
		p.Go(func(ctx context.Context) error {
			defer close(h.done)
			h.there, _, h.err = s.reg.BlobExists(ctx, s.opts.Repo, d.Digest)
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
// rather than spending its first round trip on them. For a blob the
// repository lacks and that upload (may be nil) says will be uploaded
// here rather than mounted (one no other image of the run has), it also
// opens the upload session (POST), which the sink uploads into: the
// upload's first round trip is spent ahead too. It returns once every
// request has answered or ctx is done; a HEAD that failed is sent again
// by the sink, and a session the sink does not use is cancelled by Close.
// Call it before Sink.
func (o *Output) HeadAhead(ctx context.Context, descs []v1.Descriptor, upload func(digest.Digest) bool) {
	reg := o.t.Registry(o.opts.Host, o.opts.Registry)
	p := pool.New().WithContext(ctx)
	o.mu.Lock()
	for _, d := range descs {
		if d.Digest.Validate() != nil || o.early[d.Digest] != nil {
			continue
		}
		h := &headAhead{done: make(chan struct{})}
		o.early[d.Digest] = h
		p.Go(func(ctx context.Context) error {
			defer close(h.done)
			h.there, _, h.err = reg.BlobExists(ctx, o.opts.Repo, d.Digest)
			if h.err == nil && ctx.Err() != nil {
				h.err = ctx.Err()
			}
			if h.err != nil || h.there || upload == nil || !upload(d.Digest) {
				return nil
			}
			if up, err := reg.OpenUpload(ctx, o.opts.Repo); err == nil {
				o.mu.Lock()
				o.sessions[d.Digest] = up
				o.mu.Unlock()
			}
			return nil
		})
	}
	o.mu.Unlock()
	_ = p.Wait()
}

// session hands the sink the upload session opened ahead for d, if any;
// each is handed out once.
func (o *Output) session(d digest.Digest) *transport.Upload {
	o.mu.Lock()
	defer o.mu.Unlock()
	up := o.sessions[d]
	delete(o.sessions, d)
	return up
}

// cancelSessions ends the sessions opened ahead that no sink used.
func (o *Output) cancelSessions() {
	o.mu.Lock()
	left := o.sessions
	o.sessions = map[digest.Digest]*transport.Upload{}
	o.mu.Unlock()
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := pool.New()
	for _, up := range left {
		p.Go(func() { _ = up.Cancel(ctx) }) // best effort: registries expire them too
	}
	p.Wait()
}
