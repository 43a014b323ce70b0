package keylock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/conc"
)

func TestOneHolderPerKey(t *testing.T) {
	var l Locks
	var inside, most atomic.Int64
	var wg conc.WaitGroup
	for range 16 {
		wg.Go(func() {
			unlock, err := l.Lock(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders at once, want 1", most.Load())
	}
	if len(l.held) != 0 {
		t.Errorf("%d keys left held", len(l.held))
	}
}

func TestOtherKeysAndCancel(t *testing.T) {
	var l Locks
	unlock, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free.
	ub, err := l.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	ub()
	// A waiter on a held key gives up with its context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	unlock()
	if u, err := l.Lock(context.Background(), "a"); err != nil {
		t.Errorf("after unlock: %v", err)
	} else {
		u()
	}
}
