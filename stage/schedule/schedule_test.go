package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/stage/schedule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// list hands found the images 0..n-1 as strings.
func list(n int) func(context.Context, func(string)) error {
	return func(_ context.Context, found func(string)) error {
		for i := range n {
			found(fmt.Sprint("img-", i))
		}
		return nil
	}
}

// most records the largest value a counter reaches.
type most struct{ cur, max atomic.Int64 }

func (m *most) inc() {
	c := m.cur.Add(1)
	for v := m.max.Load(); c > v && !m.max.CompareAndSwap(v, c); v = m.max.Load() {
	}
}

func (m *most) dec() { m.cur.Add(-1) }

// TestResultsInListOrder finishes the images in the reverse of their
// order: Done sees them as they finish, the results come back in list
// order, and each image's Then replaces its result.
func TestResultsInListOrder(t *testing.T) {
	t.Parallel()
	const n = 6
	// Image i finishes only once image i+1 has: the last one first.
	finished := make([]chan struct{}, n+1)
	for i := range finished {
		finished[i] = make(chan struct{})
	}
	close(finished[n])
	s := schedule.New[string, string](context.Background(), schedule.Options[string]{Jobs: n})
	defer s.Close()
	images, err := s.List(context.Background(), list(n))
	if err != nil {
		t.Fatal(err)
	}
	var done []int
	got, err := s.Run(context.Background(), schedule.Task[string, string]{
		Run: func(ctx context.Context, i int, img string) (string, func(context.Context) string, error) {
			<-finished[i+1]
			return img + " ran", func(ctx context.Context) string {
				if ctx.Err() != nil { // the slots' pool is waited for; the run is not over
					return img + " then cancelled"
				}
				return img + " ran, then"
			}, nil
		},
		Done: func(i int, img string, r string) {
			done = append(done, i) // one call at a time: no lock
			close(finished[i])
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, img := range images {
		want = append(want, img+" ran, then")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{5, 4, 3, 2, 1, 0}, done); diff != "" {
		t.Errorf("Done order (-want +got):\n%s", diff)
	}
}

// TestJobsAndLookaheadBounds runs images with a lookahead: never more than
// Jobs run at once, never more than Jobs+Ahead are prepared and not
// finished, an image that was prepared runs only once it is ready, and
// every preparation is released once (by Close for those never run).
func TestJobsAndLookaheadBounds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name            string
		n, jobs, ahead  int
		stopAfter       int // cancel the run once this many have run (0: never)
		wantAllPrepared bool
	}{
		{"one-at-a-time", 10, 1, 0, 0, false},
		{"deep", 20, 3, 5, 0, false},
		{"deeper-than-run", 5, 2, 50, 0, false},
		{"cancelled", 20, 2, 2, 6, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var running, prepared most
			var released atomic.Int64
			var preparedN atomic.Int64
			var mu sync.Mutex
			ready := map[int]bool{}
			started := map[int]bool{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := schedule.New[string, string](ctx, schedule.Options[string]{Jobs: c.jobs, Ahead: c.ahead,
				Prepare: func(ctx context.Context, i int, img string, readyF func()) func() {
					prepared.inc()
					preparedN.Add(1)
					mu.Lock()
					started[i] = true
					mu.Unlock()
					runtime.Gosched() // a run that did not wait would see it not ready
					mu.Lock()
					ready[i] = true
					mu.Unlock()
					readyF()
					<-ctx.Done() // held until the image has run (or the run ends)
					prepared.dec()
					return func() { released.Add(1) }
				}})
			if _, err := s.List(ctx, list(c.n)); err != nil {
				t.Fatal(err)
			}
			var ran atomic.Int64
			got, err := s.Run(ctx, schedule.Task[string, string]{
				Run: func(ctx context.Context, i int, img string) (string, func(context.Context) string, error) {
					running.inc()
					defer running.dec()
					mu.Lock()
					if started[i] && !ready[i] {
						t.Errorf("image %d ran before its preparation was ready", i)
					}
					mu.Unlock()
					if ran.Add(1) == int64(c.stopAfter) {
						cancel()
					}
					return "ran", nil, nil
				},
				NotRun: func(i int, img string, err error) string {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("image %d not run: %v", i, err)
					}
					return "not run"
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if running.max.Load() > int64(c.jobs) {
				t.Errorf("%d images ran at once, Jobs %d", running.max.Load(), c.jobs)
			}
			if prepared.max.Load() > int64(c.jobs+c.ahead) {
				t.Errorf("%d images prepared at once, Jobs+Ahead %d", prepared.max.Load(), c.jobs+c.ahead)
			}
			if released.Load() != preparedN.Load() {
				t.Errorf("%d preparations released of %d", released.Load(), preparedN.Load())
			}
			notRun := 0
			for _, r := range got {
				if r == "not run" {
					notRun++
				}
			}
			if c.stopAfter == 0 && (ran.Load() != int64(c.n) || notRun != 0) {
				t.Errorf("%d ran, %d not run, want %d ran", ran.Load(), notRun, c.n)
			}
			if int(ran.Load())+notRun != c.n {
				t.Errorf("%d ran and %d not run of %d", ran.Load(), notRun, c.n)
			}
		})
	}
}

// TestFirstErrorWins fails one task while the others wait for the
// cancellation it causes: Each returns that error, not context.Canceled.
func TestFirstErrorWins(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	items := []int{0, 1, 2, 3}
	var started sync.WaitGroup
	started.Add(3)
	_, err := schedule.Each(context.Background(), len(items), items, func(ctx context.Context, i int, item int) (int, error) {
		if i == 2 {
			started.Wait() // the others are waiting on ctx
			return 0, boom
		}
		started.Done()
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Errorf("Each = %v, want %v", err, boom)
	}
}

// TestPerImageFailureIsAResult fails no task: an image's failure is part
// of its result and the other images run.
func TestPerImageFailureIsAResult(t *testing.T) {
	t.Parallel()
	got, err := schedule.Each(context.Background(), 2, []int{1, 2, 3}, func(ctx context.Context, i int, item int) (string, error) {
		if item == 2 {
			return "failed", nil
		}
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ok", "failed", "ok"}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestCancelledRun cancels the run's context while images run: every
// task sees it, Run returns once all have, and the error is the
// cancellation (goleak checks nothing is left running).
func TestCancelledRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	_, err := schedule.Each(ctx, 2, make([]int, 10), func(ctx context.Context, i int, _ int) (int, error) {
		if ran.Add(1) == 2 { // both slots taken
			cancel()
		}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Each = %v, want context.Canceled", err)
	}
}

// TestListFails returns the listing's error and runs nothing.
func TestListFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("resolve failed")
	s := schedule.New[string, string](context.Background(), schedule.Options[string]{Jobs: 2, Ahead: 2,
		Prepare: func(ctx context.Context, i int, img string, ready func()) func() { ready(); <-ctx.Done(); return nil }})
	defer s.Close()
	images, err := s.List(context.Background(), func(ctx context.Context, found func(string)) error {
		found("a")
		found("b")
		return boom
	})
	if !errors.Is(err, boom) || images != nil {
		t.Errorf("List = %v, %v; want nil, %v", images, err, boom)
	}
}
