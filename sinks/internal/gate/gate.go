package gate

import "sync"

// Gate is open and unused as a zero value. It is safe for concurrent use.
type Gate struct {
	mu     sync.Mutex
	used   bool
	closed bool
}

// Enter is what an output's Sink asks first. closed is true once Close was
// called. Otherwise, for an output of one image (one), again is true when a
// sink was handed out before; when both are false the caller hands its sink
// out, and an output of one image counts as used from then on.
func (g *Gate) Enter(one bool) (closed, again bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return true, false
	}
	if !one {
		return false, false
	}
	if g.used {
		return false, true
	}
	g.used = true
	return false, false
}

// Close closes the gate; Enter reports closed from then on. It is safe to
// call more than once.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}
