package schedule

import (
	"context"
	"sync"

	"github.com/sourcegraph/conc/pool"
)

// Options say how a Scheduler runs images of type T.
type Options[T any] struct {
	// Jobs is how many images run at once (-J); at least 1.
	Jobs int
	// Ahead is how many images beyond the Jobs running may be prepared
	// ahead of their turn (the lookahead's budget, in images). Unused
	// without Prepare.
	Ahead int
	// Prepare, if not nil, prepares image i (img) ahead of its turn: it
	// calls ready once the image may start (what its run waits for), and
	// returns when the preparation is over or ctx is done, which happens
	// when the image has run or the run ends. What it returns (may be nil)
	// releases what the preparation holds; it is called once the image
	// has run, or by Close for an image that never did.
	Prepare func(ctx context.Context, i int, img T, ready func()) (release func())
}

// Task is what Run does with each image.
type Task[T, R any] struct {
	// Run runs image i in its slot and returns its result. Then, if not
	// nil, is what is left to do once the image has left its slot (verify
	// it, close its own output): it runs at most Jobs at once, overlapping
	// the next images, and the result it returns replaces the image's.
	// A non-nil error is fatal to the run (see the package doc).
	Run func(ctx context.Context, i int, img T) (r R, then func(context.Context) R, err error)
	// NotRun, if not nil, is the result of an image whose turn came after
	// the run was cancelled (err says why); otherwise it is R's zero value.
	NotRun func(i int, img T, err error) R
	// Done, if not nil, is called once each image that ran has left its
	// slot (before its Then), with its result: one call at a time, in the
	// order they finish.
	Done func(i int, img T, r R)
}

// Scheduler runs the images of one run (see the package doc).
type Scheduler[T, R any] struct {
	o      Options[T]
	look   *lookahead // nil without Prepare
	feeder *pool.ContextPool
	stop   context.CancelFunc

	mu     sync.Mutex
	images []T
}

// New makes a Scheduler and, when o.Prepare is set, starts its lookahead,
// which prepares the images as List finds them until Close. ctx bounds the
// preparations.
func New[T, R any](ctx context.Context, o Options[T]) *Scheduler[T, R] {
	o.Jobs = max(o.Jobs, 1)
	s := &Scheduler[T, R]{o: o}
	if o.Prepare == nil {
		return s
	}
	s.look = newLookahead(o.Jobs+max(o.Ahead, 0), func(ctx context.Context, i int, ready func()) func() {
		s.mu.Lock()
		img := s.images[i]
		s.mu.Unlock()
		return o.Prepare(ctx, i, img, ready)
	})
	fctx, stop := context.WithCancel(ctx)
	s.stop = stop
	s.feeder = pool.New().WithContext(fctx)
	s.feeder.Go(s.look.run)
	return s
}

// List calls list, which hands found each image in the order they are to
// run, one call at a time, and returns the images found; while it runs,
// the images found so far are prepared. When list fails, List returns its
// error and the images found are no result.
func (s *Scheduler[T, R]) List(ctx context.Context, list func(ctx context.Context, found func(T)) error) ([]T, error) {
	err := list(ctx, func(img T) {
		s.mu.Lock()
		s.images = append(s.images, img)
		s.mu.Unlock()
		if s.look != nil {
			s.look.add()
		}
	})
	if s.look != nil {
		s.look.close()
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]T(nil), s.images...), nil
}

// Run runs every image List found, and returns their results in list
// order and the first task error. It returns once every task, Then and
// Done has.
func (s *Scheduler[T, R]) Run(ctx context.Context, t Task[T, R]) ([]R, error) {
	s.mu.Lock()
	images := append([]T(nil), s.images...)
	s.mu.Unlock()
	results := make([]R, len(images))
	// Then runs under the run's context, not the slot pool's, which is
	// cancelled when the pool is waited for.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := pool.New().WithContext(rctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(s.o.Jobs)
	// Then runs after its image leaves its slot, at most Jobs at once: a
	// slot whose image is written waits only when that many are still at
	// it.
	then := pool.New().WithMaxGoroutines(s.o.Jobs)
	var doneMu sync.Mutex
	for i, img := range images { // started in this order
		slots.Go(func(ctx context.Context) error {
			if err := s.take(ctx, i); err != nil {
				s.finished(i)
				if t.NotRun != nil {
					results[i] = t.NotRun(i, img, err)
				}
				return nil
			}
			r, after, err := t.Run(ctx, i, img)
			s.finished(i)
			results[i] = r
			if err != nil {
				return err
			}
			if t.Done != nil {
				doneMu.Lock()
				t.Done(i, img, r)
				doneMu.Unlock()
			}
			if after != nil {
				then.Go(func() { results[i] = after(rctx) })
			}
			return nil
		})
	}
	err := slots.Wait()
	then.Wait()
	return results, err
}

func (s *Scheduler[T, R]) take(ctx context.Context, i int) error {
	if s.look == nil {
		return nil // the task sees ctx itself
	}
	return s.look.take(ctx, i)
}

func (s *Scheduler[T, R]) finished(i int) {
	if s.look != nil {
		s.look.finished(i)
	}
}

// Close stops the lookahead, waits for its preparations and releases what
// they hold for images that never ran. Call it once, after Run (or instead
// of it).
func (s *Scheduler[T, R]) Close() {
	if s.look == nil {
		return
	}
	s.look.close()
	s.stop()
	_ = s.feeder.Wait()
	s.look.releaseAll()
}

// Each runs work on every item of items, at most jobs at once, started in
// order, and returns the results in order and the first error, which
// cancels the rest (see the package doc).
func Each[T, R any](ctx context.Context, jobs int, items []T, work func(ctx context.Context, i int, item T) (R, error)) ([]R, error) {
	s := New[T, R](ctx, Options[T]{Jobs: jobs})
	defer s.Close()
	if _, err := s.List(ctx, func(_ context.Context, found func(T)) error {
		for _, it := range items {
			found(it)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return s.Run(ctx, Task[T, R]{Run: func(ctx context.Context, i int, item T) (R, func(context.Context) R, error) {
		r, err := work(ctx, i, item)
		return r, nil, err
	}})
}
