package main

import (
	"sync"

	"github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/transport"
)

// netState holds the process's one transport, made on first use so that
// runs that never touch the network build none.
type netState struct {
	mu sync.Mutex
	t  *transport.Transport
	// pushed is the run's record of blobs pushed to registry:// outputs, so
	// that the images of a multi-image run, each with its own output, push a
	// shared blob once and mount it elsewhere.
	pushed *registry.Pushed
}

// pushedSet returns the run's record of pushed blobs.
func (a *app) pushedSet() *registry.Pushed {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.pushed == nil {
		a.net.pushed = registry.NewPushed()
	}
	return a.net.pushed
}

// transport returns the process's transport, making it the first time.
func (a *app) transport() (*transport.Transport, error) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.t != nil {
		return a.net.t, nil
	}
	t, err := transport.New(transport.Options{
		Parallel:      a.g.Parallel,
		ImageParallel: a.g.ImageParallel,
		Retries:       a.g.Retries,
		NoRetries:     a.g.Retries <= 0,
		RateLimit:     a.g.RateLimit,
		Username:      a.g.Username,
		Password:      a.g.Password,
	})
	if err != nil {
		return nil, err
	}
	a.net.t = t
	return t, nil
}

// transportStats returns the transport's counters, if one was made.
func (a *app) transportStats() (transport.Stats, bool) {
	a.net.mu.Lock()
	defer a.net.mu.Unlock()
	if a.net.t == nil {
		return transport.Stats{}, false
	}
	return a.net.t.Stats(), true
}
