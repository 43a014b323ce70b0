package registry

import (
	"context"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/keylock"
)

// the repository each went to. It is safe for concurrent use.
type Pushed struct {
	mu     sync.Mutex
	m      map[string]string
	layers map[string]v1.Descriptor // by compression and DiffID (or name)
	// busy is held, per host and digest, by the sink now pushing that blob.
	busy keylock.Locks
	// pinged holds the hosts a sink of the run has pinged.
	pinged map[string]bool
}

// NewPushed makes an empty set.
func NewPushed() *Pushed {
	return &Pushed{m: map[string]string{}, layers: map[string]v1.Descriptor{}, pinged: map[string]bool{}}
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

// in reports whether this run pushed (or found) d in repo of host.
func (p *Pushed) in(host string, d digest.Digest, repo string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[host+" "+d.String()]
	return ok && r == repo
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
	p.m[host+" "+d.String()] = repo
}

// elsewhere is the repository of host this run pushed d to, if it is not
// repo.
func (p *Pushed) elsewhere(host string, d digest.Digest, repo string) (string, bool) {
	if p == nil {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[host+" "+d.String()]
	return r, ok && r != repo
}
