package registry

import (
	"context"
	"errors"
	"slices"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/keylock"
	"github.com/occystrap/occystrap/transport"
)

// Pushed is the set of blobs a run pushed, by registry host and digest, and
// the repositories each went to. It is safe for concurrent use.
type Pushed struct {
	mu sync.Mutex
	// m holds, by host and digest, the repositories the blob is in (the
	// first one it went to first).
	m      map[string][]string
	layers map[string]v1.Descriptor // by compression and DiffID (or name)
	// busy is held, per host and digest, by the sink now pushing that blob.
	busy keylock.Locks
	// pinged holds the hosts a sink of the run has pinged.
	pinged map[string]bool
	// arrived holds, by host and digest, a channel closed when the blob is
	// first recorded (await).
	arrived map[string]chan struct{}
}

// NewPushed makes an empty set.
func NewPushed() *Pushed {
	return &Pushed{m: map[string][]string{}, arrived: map[string]chan struct{}{}, layers: map[string]v1.Descriptor{}, pinged: map[string]bool{}}
}

// firstPing reports whether host is yet to be pinged in this run (and
// marks it pinged).
func (p *Pushed) firstPing(host string) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pinged[host] {
		return false
	}
	p.pinged[host] = true
	return true
}

// PingFirst pings host through reg unless a sink of the run has (or is
// about to): a run calls it as it starts, so that the connection and the
// token realm are ready when the first image needs them. A failed ping is
// only logged: the requests that follow report what is wrong.
func (p *Pushed) PingFirst(ctx context.Context, reg *transport.Registry, host string) {
	if !p.firstPing(host) {
		return
	}
	if err := reg.Ping(ctx); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Str("registry", host).Msg("Ping failed")
	}
}

// in reports whether this run pushed (or found) d in repo of host.
func (p *Pushed) in(host string, d digest.Digest, repo string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.m[host+" "+d.String()], repo)
}

// claim makes the caller the only sink of the run pushing blob d to host:
// it waits while another one is, so that the second finds the blob pushed
// (and mounts it) instead of uploading it again. release ends the claim.
func (p *Pushed) claim(ctx context.Context, host string, d digest.Digest) (release func(), err error) {
	if p == nil {
		return func() {}, nil
	}
	return p.busy.Lock(ctx, host+" "+d.String())
}

// claimIn makes the caller the only one of the run putting blob d into
// repo of host (a mount sent ahead of an image's turn, or in it), so that
// two do not mount it twice: the one that waited finds it there (in).
func (p *Pushed) claimIn(ctx context.Context, host string, d digest.Digest, repo string) (release func(), err error) {
	if p == nil {
		return func() {}, nil
	}
	return p.busy.Lock(ctx, host+" "+d.String()+" "+repo)
}

// addLayer remembers the blob a layer compressed to.
func (p *Pushed) addLayer(key string, d v1.Descriptor) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers[key] = d
}

// layer is the blob a layer compressed to earlier in the run.
func (p *Pushed) layer(key string) (v1.Descriptor, bool) {
	if p == nil {
		return v1.Descriptor{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.layers[key]
	return d, ok
}

// Add records that repo of host has blob d.
func (p *Pushed) Add(host string, d digest.Digest, repo string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := host + " " + d.String()
	if !slices.Contains(p.m[k], repo) {
		p.m[k] = append(p.m[k], repo)
	}
	if c, ok := p.arrived[k]; ok {
		close(c)
		delete(p.arrived, k)
	}
}

// await waits until the run has blob d in some repository of host.
func (p *Pushed) await(ctx context.Context, host string, d digest.Digest) error {
	if p == nil {
		return errors.New("no record of pushed blobs")
	}
	k := host + " " + d.String()
	p.mu.Lock()
	if len(p.m[k]) > 0 {
		p.mu.Unlock()
		return nil
	}
	c, ok := p.arrived[k]
	if !ok {
		c = make(chan struct{})
		p.arrived[k] = c
	}
	p.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// elsewhere is the repository of host this run pushed d to, if it is not
// repo.
func (p *Pushed) elsewhere(host string, d digest.Digest, repo string) (string, bool) {
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.m[host+" "+d.String()] {
		if r != repo {
			return r, true
		}
	}
	return "", false
}
