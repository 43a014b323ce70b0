package schedule

import (
	"context"
	"sync"

	"github.com/sourcegraph/conc/pool"
)

// lookahead schedules the preparations of a run: images are numbered 0,
// 1, ... in the order they are added (add), which is the order they run
// in, and image i is prepared once fewer than depth images are prepared
// and not finished. Images may be added while earlier ones are prepared
// (as they are found). Running image i calls take before it starts (it
// waits until a preparation that started is ready, never for one that
// has not started: that image then runs without one) and finished after
// it ends.
//
// run is the feeder; the Scheduler runs it on a pool it owns, with a
// context it cancels once every image has run (or the run fails), then
// calls releaseAll.
type lookahead struct {
	prepare func(ctx context.Context, i int, ready func()) (release func())
	tokens  chan struct{}
	more    chan struct{} // a signal: an image was added, or close called

	mu     sync.Mutex
	slots  []*lookSlot
	closed bool
}

// lookSlot is one image's preparation.
type lookSlot struct {
	mu      sync.Mutex
	state   int // 0 not started, 1 prepared, 2 run without
	ready   chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	release func()
}

// newLookahead prepares images, at most depth (at least 1) at once.
func newLookahead(depth int, prepare func(ctx context.Context, i int, ready func()) func()) *lookahead {
	return &lookahead{prepare: prepare, tokens: make(chan struct{}, max(depth, 1)), more: make(chan struct{}, 1)}
}

// add adds the next image.
func (l *lookahead) add() {
	l.mu.Lock()
	l.slots = append(l.slots, &lookSlot{ready: make(chan struct{}), done: make(chan struct{})})
	l.mu.Unlock()
	l.signal()
}

// close says no image will be added.
func (l *lookahead) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}

func (l *lookahead) signal() {
	select {
	case l.more <- struct{}{}:
	default:
	}
}

// slot is image i's slot once it is added; nil when none will be.
func (l *lookahead) slot(ctx context.Context, i int) *lookSlot {
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

// run starts the preparations in order as images are added and tokens
// free up, until every image has been started or ctx is done, and returns
// when the preparations it started have.
func (l *lookahead) run(ctx context.Context) error {
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
		if sl.state != 0 { // already running without
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
			ready := sync.OnceFunc(func() { close(sl.ready) })
			defer ready()
			release := l.prepare(pctx, i, ready)
			sl.mu.Lock()
			sl.release = release
			sl.mu.Unlock()
		})
	}
}

// at is image i's slot; i must have been added.
func (l *lookahead) at(i int) *lookSlot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slots[i]
}

// take is called before image i (added) runs: it waits until a
// preparation that started is ready, or marks i as run without one.
func (l *lookahead) take(ctx context.Context, i int) error {
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

// finished is called once image i has run (or failed): its preparation is
// stopped and what it holds released, and its token freed.
func (l *lookahead) finished(i int) {
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
	release := sl.release
	sl.release = nil
	sl.mu.Unlock()
	if release != nil {
		release()
	}
	<-l.tokens
}

// releaseAll releases what preparations still hold, for images that never
// ran; call it after run has returned.
func (l *lookahead) releaseAll() {
	l.mu.Lock()
	slots := l.slots
	l.mu.Unlock()
	for _, sl := range slots {
		sl.mu.Lock()
		release := sl.release
		sl.release = nil
		sl.mu.Unlock()
		if release != nil {
			release()
		}
	}
}
