package stagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage"
)

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "stagetest"}
}

// SinkSuite describes an output to RunSinkConformance.
type SinkSuite struct {
	// New opens a fresh, empty output (a new directory, repository or
	// tag) for one check. The suite closes it.
	New func(t *testing.T) stage.Output
	// View is a normalized description of what out holds for img (a
	// listing, the layer digests, the manifest digest): runs that must
	// give the same output must give the same view. It may be nil; the
	// output's Verify (when it is a stage.Verifier) is checked either way.
	View func(t *testing.T, out stage.Output, img stage.Image) []string
	// Between, when set, is called between two images written into one
	// output (the skipped-layers check), for an output that holds one
	// image at a time (mounts://: unmount the first image's rootfs).
	Between func(t *testing.T, out stage.Output)
	// LeakOptions are goleak options for goroutines the output's machinery
	// keeps on purpose beyond a run (an idle HTTP connection pool).
	LeakOptions []goleak.Option
}

// conformanceImage is what the suite writes: three layers (a directory
// and files, a symlink, a whiteout of an earlier file).
func conformanceImage() fixture.Built {
	return fixture.Build(fixture.Image{Name: "conformance/app", Tag: "v1", Layers: []fixture.Layer{
		{fixture.Dir("etc", 0o755), fixture.File("etc/one", "one", 0o644), fixture.File("etc/gone", "gone", 0o644)},
		{fixture.File("two", "two", 0o600), fixture.Symlink("link", "two")},
		{fixture.Whiteout("etc/gone"), fixture.File("etc/three", "three", 0o644)},
	}})
}

// ConformanceItems are the items of the suite's image: the config first,
// then each layer with its DiffID and size; layer bodies count their
// releases in rel (may be nil).
func ConformanceItems(rel *Released) []stage.Item {
	b := conformanceImage()
	its := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: b.ConfigDigest.Encoded() + ".json", Data: b.Config}}
	for i, l := range b.Layers {
		its = append(its, stage.Item{Seq: i, Kind: stage.KindLayer, Name: b.DiffIDs[i].Encoded(),
			DiffID: b.DiffIDs[i], Size: int64(len(l)), Body: MemBody(l, rel)})
	}
	return its
}

// RunSinkConformance checks an output's sinks against the contract of
// stage.Sink (as containerd's content/testsuite or rclone's fstests): every
// sink's test calls it. The checks run one after the other (a goroutine
// check must not see another test's goroutines), so the caller must not be
// a parallel test.
//
//   - Layers in any order (config first, last or between them) give the
//     same output; a sink that declares Ordered receives them in Seq
//     order from the engine.
//   - A skipped layer the output does not have fails with
//     stage.ErrMissingLayer; one it says it Has is taken as is.
//   - A KindManifest item with plain layer bodies changes nothing: a sink
//     that does not declare Compressed ignores it, one that does uses it
//     only when it copied every layer through.
//   - A second config fails with stage.ErrSecondConfig; a missing config
//     with stage.ErrNoConfig.
//   - Every body is released once, whatever the outcome.
//   - A run cancelled while the sink reads a layer ends, releases every
//     body and leaves no goroutine behind; Consume returns after its
//     context is cancelled even when its input is never closed.
func RunSinkConformance(t *testing.T, s SinkSuite) {
	t.Helper()
	img := stage.Image{Name: "conformance/app", Tag: "v1"}
	t.Run("order", func(t *testing.T) { checkOrder(t, s, img) })
	t.Run("manifest item ignored", func(t *testing.T) { checkManifestIgnored(t, s, img) })
	t.Run("skipped layer missing", func(t *testing.T) { checkSkippedMissing(t, s, img) })
	t.Run("skipped layers held", func(t *testing.T) { checkSkippedHeld(t, s, img) })
	t.Run("second config", func(t *testing.T) {
		its := ConformanceItems(nil)
		cfg := its[0]
		cfg.Name = "second-" + cfg.Name
		checkFails(t, s, img, append(its, cfg), stage.ErrSecondConfig)
	})
	t.Run("missing config", func(t *testing.T) { checkFails(t, s, img, ConformanceItems(nil)[1:], stage.ErrNoConfig) })
	t.Run("cancel mid-run", func(t *testing.T) { checkCancel(t, s, img) })
	t.Run("consume returns on cancel", func(t *testing.T) { checkConsumeCancel(t, s, img) })
	t.Run("consume returns on cancel while idle", func(t *testing.T) { checkConsumeIdle(t, s, img) })
}

// orders are the arrival orders checked: as built, config last with the
// layers reversed, config between the layers.
var orders = map[string]func([]stage.Item) []stage.Item{
	"in order": func(its []stage.Item) []stage.Item { return its },
	"reversed with config last": func(its []stage.Item) []stage.Item {
		out := slices.Clone(its[1:])
		slices.Reverse(out)
		return append(out, its[0])
	},
	"config between": func(its []stage.Item) []stage.Item {
		return []stage.Item{its[2], its[0], its[3], its[1]}
	},
}

func open(t *testing.T, s SinkSuite) stage.Output {
	t.Helper()
	out := s.New(t)
	t.Cleanup(func() {
		if err := out.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return out
}

func sinkOf(t *testing.T, out stage.Output, img stage.Image) stage.Sink {
	t.Helper()
	sink, err := out.Sink(img)
	if err != nil {
		t.Fatalf("Sink(%s): %v", img, err)
	}
	return sink
}

// verify fails the test when the output (a stage.Verifier) finds problems
// with what it wrote for img.
func verify(t *testing.T, out stage.Output, img stage.Image) {
	t.Helper()
	v, ok := out.(stage.Verifier)
	if !ok {
		return
	}
	problems, err := v.Verify(t.Context(), img, true)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(problems) > 0 {
		t.Errorf("Verify found problems: %q", problems)
	}
}

func view(t *testing.T, s SinkSuite, out stage.Output, img stage.Image) []string {
	t.Helper()
	if s.View == nil {
		return nil
	}
	return s.View(t, out, img)
}

func checkReleased(t *testing.T, rel *Released, want int) {
	t.Helper()
	if got := rel.Count(); got != int64(want) {
		t.Errorf("%d bodies released, want %d", got, want)
	}
}

func checkOrder(t *testing.T, s SinkSuite, img stage.Image) {
	var first []string
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range orders {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out := open(t, s)
			rec := &arrivals{inner: sinkOf(t, out, img)}
			var rel Released
			its := orders[name](ConformanceItems(&rel))
			if err := Run(t.Context(), rec, its); err != nil {
				t.Fatalf("run: %v", err)
			}
			checkReleased(t, &rel, 3)
			if rec.inner.Properties().Ordered && !slices.IsSorted(rec.seqs) {
				t.Errorf("the sink declares Ordered but received layers %v", rec.seqs)
			}
			verify(t, out, img)
			v := view(t, s, out, img)
			if first == nil {
				first = v
				return
			}
			if d := cmp.Diff(first, v); d != "" {
				t.Errorf("output differs from %q (-first +this):\n%s", names[0], d)
			}
		})
	}
}

func checkManifestIgnored(t *testing.T, s SinkSuite, img stage.Image) {
	ref := open(t, s)
	if err := Run(t.Context(), sinkOf(t, ref, img), ConformanceItems(nil)); err != nil {
		t.Fatalf("run without a manifest item: %v", err)
	}
	want := view(t, s, ref, img)

	out := open(t, s)
	sink := sinkOf(t, out, img)
	var rel Released
	its := ConformanceItems(&rel)
	m := stage.Item{Seq: -2, Kind: stage.KindManifest, Name: v1.MediaTypeImageManifest, Data: []byte(`{"schemaVersion":2,"layers":"not these"}`)}
	its = append([]stage.Item{its[0], its[1], m}, its[2:]...)
	if err := Run(t.Context(), sink, its); err != nil {
		t.Fatalf("run with a manifest item: %v", err)
	}
	checkReleased(t, &rel, 3)
	verify(t, out, img)
	if d := cmp.Diff(want, view(t, s, out, img)); d != "" {
		t.Errorf("a manifest item changed the output (-without +with):\n%s", d)
	}
}

func checkSkippedMissing(t *testing.T, s SinkSuite, img stage.Image) {
	out := open(t, s)
	var rel Released
	its := ConformanceItems(&rel)
	_ = its[2].Release()
	its[2].Body = nil
	err := Run(t.Context(), sinkOf(t, out, img), its)
	if !errors.Is(err, stage.ErrMissingLayer) {
		t.Errorf("a skipped layer the output does not hold: %v, want an error that is stage.ErrMissingLayer", err)
	}
	checkReleased(t, &rel, 3)
}

// checkSkippedHeld writes the image, then another image of the same
// layers into the same output with every layer the sink Has skipped.
func checkSkippedHeld(t *testing.T, s SinkSuite, img stage.Image) {
	out := open(t, s)
	sink := sinkOf(t, out, img)
	has := sink.Properties().Has
	if has == nil {
		return // the output holds no layers a source could skip
	}
	if err := Run(t.Context(), sink, ConformanceItems(nil)); err != nil {
		t.Fatalf("first image: %v", err)
	}
	if s.Between != nil {
		s.Between(t, out)
	}
	again := stage.Image{Name: img.Name + "-again", Tag: img.Tag}
	sink = sinkOf(t, out, again)
	has = sink.Properties().Has
	var rel Released
	its := ConformanceItems(&rel)
	skipped := 0
	for i := range its {
		if its[i].Kind == stage.KindLayer && has(its[i].Name) {
			_ = its[i].Release()
			its[i].Body = nil
			skipped++
		}
	}
	if skipped != 3 {
		t.Errorf("Has reports %d of the 3 layers just written", skipped)
	}
	if err := Run(t.Context(), sink, its); err != nil {
		t.Fatalf("image with skipped layers: %v", err)
	}
	checkReleased(t, &rel, 3)
	verify(t, out, again)
}

func checkFails(t *testing.T, s SinkSuite, img stage.Image, its []stage.Item, want error) {
	out := open(t, s)
	var rel Released
	n := 0
	for i := range its {
		if its[i].Kind == stage.KindLayer {
			data, err := readAll(its[i].Body)
			if err != nil {
				t.Fatal(err)
			}
			its[i].Body = MemBody(data, &rel)
			n++
		}
	}
	err := Run(t.Context(), sinkOf(t, out, img), its)
	if !errors.Is(err, want) {
		t.Errorf("run: %v, want an error that is %v", err, want)
	}
	checkReleased(t, &rel, n)
}

func readAll(b stage.Body) ([]byte, error) {
	rc, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// checkCancel cancels a run while the sink reads the second layer: the
// body's reader blocks until the run's context is cancelled, as a stream
// whose transport is cancelled with the run does.
func checkCancel(t *testing.T, s SinkSuite, img stage.Image) {
	leak := append([]goleak.Option{goleak.IgnoreCurrent()}, s.LeakOptions...)
	out := s.New(t)
	sink := sinkOf(t, out, img)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var rel Released
	its := ConformanceItems(&rel)
	gate := &gateBody{ctx: ctx, inner: its[2].Body, opened: make(chan struct{})}
	its[2].Body = gate

	done := make(chan error, 1)
	go func() { done <- Run(ctx, sink, its) }()
	var err error
	select {
	case <-gate.opened:
		cancel()
		err = <-done
	case err = <-done:
		t.Fatalf("the run ended (%v) before the sink read layer 1", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v, want context.Canceled", err)
	}
	checkReleased(t, &rel, 3)
	if err := out.Close(); err != nil {
		t.Errorf("Close after a cancelled run: %v", err)
	}
	goleak.VerifyNone(t, leak...)
}

// checkConsumeCancel calls Consume directly with an input that is never
// closed: it must return once its context is cancelled.
func checkConsumeCancel(t *testing.T, s SinkSuite, img stage.Image) {
	out := open(t, s)
	sink := sinkOf(t, out, img)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var rel Released
	its := ConformanceItems(&rel)
	gate := &gateBody{ctx: ctx, inner: its[1].Body, opened: make(chan struct{})}
	its[1].Body = gate
	in := make(chan stage.Item, len(its))
	for _, it := range its[:2] {
		in <- it
	}
	for _, it := range its[2:] {
		_ = it.Release()
	}
	done := make(chan error, 1)
	go func() { done <- sink.Consume(ctx, in) }()
	select {
	case <-gate.opened:
		cancel()
		<-done // a sink that waits for its input to close hangs here
	case err := <-done:
		t.Fatalf("Consume returned (%v) before it read layer 0, with its input open", err)
	}
	// What the sink did not take is the caller's.
	for len(in) > 0 {
		_ = (<-in).Release()
	}
	checkReleased(t, &rel, 3)
}

// checkConsumeIdle cancels Consume while it waits for its first item on
// an input that stays open: it must return (a sink whose receive does not
// select on its context hangs here until the test binary's timeout).
func checkConsumeIdle(t *testing.T, s SinkSuite, img stage.Image) {
	out := open(t, s)
	sink := sinkOf(t, out, img)
	ctx, cancel := context.WithCancel(t.Context())
	in := make(chan stage.Item)
	done := make(chan error, 1)
	go func() { done <- sink.Consume(ctx, in) }()
	cancel()
	if err := <-done; err == nil {
		t.Errorf("Consume cancelled before any item returned no error: it must not finish an output")
	}
}

// gateBody gives the first half of its layer, then blocks until ctx is
// done. opened is closed at the first Open.
type gateBody struct {
	ctx    context.Context
	inner  stage.Body
	opened chan struct{}
	once   sync.Once
}

func (g *gateBody) Open() (io.ReadCloser, error) {
	data, err := readAll(g.inner)
	if err != nil {
		return nil, err
	}
	g.once.Do(func() { close(g.opened) })
	return io.NopCloser(io.MultiReader(bytes.NewReader(data[:len(data)/2]), ctxReader{g.ctx})), nil
}

func (g *gateBody) Release() error { return g.inner.Release() }

type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, fmt.Errorf("layer stream: %w", r.ctx.Err())
}

// arrivals records the order in which layers reach a sink, and passes
// them on.
type arrivals struct {
	inner stage.Sink
	mu    sync.Mutex
	seqs  []int
}

func (a *arrivals) Properties() stage.SinkProperties { return a.inner.Properties() }

func (a *arrivals) Consume(ctx context.Context, in <-chan stage.Item) error {
	g, gctx := errgroup.WithContext(ctx)
	mid := make(chan stage.Item)
	g.Go(func() error { return a.inner.Consume(gctx, mid) })
	g.Go(func() error {
		defer close(mid)
		for {
			it, ok, err := stage.Recv(gctx, in)
			if !ok {
				return err
			}
			if it.Kind == stage.KindLayer {
				a.mu.Lock()
				a.seqs = append(a.seqs, it.Seq)
				a.mu.Unlock()
			}
			if err := stage.Send(gctx, mid, it); err != nil {
				return err
			}
		}
	})
	return g.Wait()
}
