package filter

import (
	"context"
	"fmt"

	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
)

// passThrough forwards every item from in to out. Layers with a body are
// first given to look, up to parallel at once, and forwarded when it returns
// (so they may leave in another order); configs and skipped layers are given
// to note and forwarded at once. look and note must not keep or release the
// item. The first error stops the run.
func passThrough(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item, parallel int,
	note func(it stage.Item) error, look func(ctx context.Context, it stage.Item) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := &failure{cancel: cancel}
	seen := map[int]bool{}
	p := pool.New().WithMaxGoroutines(max(parallel, 1))
	recv := func() error {
		for {
			it, ok, _ := stage.Recv(ctx, in)
			if !ok {
				return nil
			}
			if it.Kind == stage.KindLayer {
				if seen[it.Seq] {
					_ = it.Release()
					return fmt.Errorf("layer %d (%s): %w", it.Seq, it.Name, ErrDuplicate)
				}
				seen[it.Seq] = true
			}
			if it.Kind != stage.KindLayer || it.Skipped() {
				if err := note(it); err != nil {
					_ = it.Release()
					return err
				}
				if err := stage.Send(ctx, out, it); err != nil {
					return nil
				}
				continue
			}
			p.Go(func() {
				if ctx.Err() != nil {
					_ = it.Release()
					return
				}
				if err := look(ctx, it); err != nil {
					_ = it.Release()
					fail.set(err)
					return
				}
				if err := stage.Send(ctx, out, it); err != nil {
					fail.set(err)
				}
			})
		}
	}
	err := recv()
	p.Wait()
	if err != nil {
		return err
	}
	if err := fail.first(); err != nil {
		return err
	}
	return context.Cause(ctx)
}
