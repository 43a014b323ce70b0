package stage

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"
)

// Options tune a run.
type Options struct {
	// Window is the reorder buffer's credit: the most layers that may be
	// outstanding ahead of the next one a sink that needs order is waiting
	// for. Default 8.
	Window int
	// Buffer is the capacity of each channel between components. Default 1.
	Buffer int
}

// Stats counts what passed out of one component of a run.
type Stats struct {
	Name    string
	Items   int64
	Layers  int64
	Bytes   int64 // sum of the known uncompressed sizes of the layers
	Elapsed time.Duration
}

// Report is what a run counted.
type Report struct {
	// Stages holds one entry per component: the source, each stage, and the
	// sink, in pipeline order. The sink's entry counts what it received.
	Stages []Stats
	// MaxReordered is the most layers the reorder buffer held at once (0 when
	// the sink does not need order).
	MaxReordered int
}

// Run moves one image from src through stages into sink. It returns when
// every goroutine it started has finished. The first real error cancels the
// run and is returned; bodies of items left in channels are released.
func Run(ctx context.Context, src Source, stages []Stage, sink Sink, opts Options) (*Report, error) {
	if opts.Window <= 0 {
		opts.Window = 8
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1
	}

	// The sink's properties are read once; the source is told what they
	// and the stages allow (Wiring).
	props := sink.Properties()
	var win *Window
	if props.Ordered {
		win = NewWindow(opts.Window)
	}
	if w, ok := src.(Wirable); ok {
		wiring := Wiring{Window: win}
		if props.Has != nil && SkipAllowed(stages) {
			wiring.Has = props.Has
		}
		wiring.Compressed = props.Compressed && !ChangesContent(stages)
		w.Wire(wiring)
	}

	n := len(stages) + 2
	counters := make([]counter, n)
	counters[0].name = orDefault(src.Properties().Name, "source")
	for i, s := range stages {
		counters[i+1].name = orDefault(s.Properties().Name, fmt.Sprintf("stage%d", i+1))
	}
	counters[n-1].name = orDefault(props.Name, "sink")

	// raw[i] is written by component i; fwd[i] is read by component i+1. A
	// relay between them counts what passes (and, in front of an ordered
	// sink, restores order).
	raw := make([]chan Item, n-1)
	fwd := make([]chan Item, n-1)
	for i := range raw {
		raw[i] = make(chan Item, opts.Buffer)
		fwd[i] = make(chan Item, opts.Buffer)
	}

	// A component that fails cancels the run before its output channel is
	// closed: the close then never looks like the end of a complete image
	// to the components after it (a sink must not finish an output whose
	// source failed; Recv reports the cancellation instead of the close).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs FirstError
	p := pool.New().WithContext(ctx).WithCancelOnError()
	run := func(c *counter, out chan Item, f func(ctx context.Context) error) {
		p.Go(func(ctx context.Context) (err error) {
			start := time.Now()
			ok := false
			defer func() {
				if !ok { // an error, or a panic on its way up
					cancel()
				}
				if out != nil {
					close(out)
				}
			}()
			err = f(ctx)
			c.elapsed.Store(int64(time.Since(start)))
			errs.Record(err)
			ok = err == nil
			return err
		})
	}

	run(&counters[0], raw[0], func(ctx context.Context) error {
		return src.Emit(ctx, raw[0])
	})
	for i, s := range stages {
		run(&counters[i+1], raw[i+1], func(ctx context.Context) error {
			return s.Run(ctx, fwd[i], raw[i+1])
		})
	}
	run(&counters[n-1], nil, func(ctx context.Context) error {
		err := sink.Consume(ctx, fwd[n-2])
		if err == nil {
			// A sink that returns early without error must not strand
			// senders: drain what is left.
			for it := range fwd[n-2] {
				_ = it.Release()
			}
		}
		return err
	})
	var reorder *reorderBuffer
	for i := range raw {
		last := i == n-2
		c := &counters[i]
		if last && win != nil {
			reorder = &reorderBuffer{win: win}
			p.Go(func(ctx context.Context) (err error) {
				defer func() { closeAfter(err, cancel, fwd[i]) }()
				err = reorder.run(ctx, raw[i], fwd[i], c)
				errs.Record(err)
				return err
			})
			continue
		}
		p.Go(func(ctx context.Context) (err error) {
			defer func() { closeAfter(err, cancel, fwd[i]) }()
			err = relay(ctx, raw[i], fwd[i], c, win, i == 0)
			errs.Record(err)
			return err
		})
	}
	// The sink's received counts are the last relay's.
	waitErr := p.Wait()

	// Everything has stopped; release what was left in flight.
	for i := range raw {
		drain(raw[i])
		drain(fwd[i])
	}
	if reorder != nil {
		reorder.releaseHeld()
	}

	rep := &Report{}
	for i := range counters {
		s := counters[i].stats()
		if i == n-1 {
			prev := counters[n-2].stats()
			s.Items, s.Layers, s.Bytes = prev.Items, prev.Layers, prev.Bytes
		}
		rep.Stages = append(rep.Stages, s)
	}
	if reorder != nil {
		rep.MaxReordered = reorder.maxHeld
	}
	if err := errs.Err(); err != nil {
		return rep, err
	}
	if waitErr != nil {
		return rep, waitErr
	}
	return rep, ctx.Err()
}

// closeAfter closes out after a relay ended, cancelling the run first when
// the relay failed.
func closeAfter(err error, cancel context.CancelFunc, out chan Item) {
	if err != nil {
		cancel()
	}
	close(out)
}

func orDefault(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

func drain(ch chan Item) {
	for it := range ch {
		_ = it.Release()
	}
}

// relay forwards items from in to out and counts them. On the source's edge
// in front of an ordered sink it also takes each layer's credit, so a source
// that emits in order never runs more than the window ahead.
func relay(ctx context.Context, in <-chan Item, out chan<- Item, c *counter, win *Window, fromSource bool) error {
	for it := range in {
		if fromSource && win != nil && it.Kind == KindLayer {
			if err := win.Acquire(ctx, it.Seq); err != nil {
				_ = it.Release()
				return err
			}
		}
		c.add(it)
		if err := Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// Send sends it on out, or releases it and returns the context's error when
// the run is cancelled first.
func Send(ctx context.Context, out chan<- Item, it Item) error {
	select {
	case out <- it:
		return nil
	case <-ctx.Done():
		_ = it.Release()
		return ctx.Err()
	}
}

type counter struct {
	name    string
	items   atomic.Int64
	layers  atomic.Int64
	bytes   atomic.Int64
	elapsed atomic.Int64
}

func (c *counter) add(it Item) {
	c.items.Add(1)
	if it.Kind == KindLayer {
		c.layers.Add(1)
		if it.Size > 0 {
			c.bytes.Add(it.Size)
		}
	}
}

func (c *counter) stats() Stats {
	return Stats{
		Name:    c.name,
		Items:   c.items.Load(),
		Layers:  c.layers.Load(),
		Bytes:   c.bytes.Load(),
		Elapsed: time.Duration(c.elapsed.Load()),
	}
}
