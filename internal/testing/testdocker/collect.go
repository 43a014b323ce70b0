package testdocker

import (
	"context"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
)

// Got is what a source emitted, as Collect records it.
type Got struct {
	Kind    stage.Kind
	Seq     int
	Name    string
	DiffID  digest.Digest
	Sum     digest.Digest // of the body or Data; "" when skipped
	Skipped bool
}

// Emitter is a source as Collect runs it.
type Emitter interface {
	Emit(ctx context.Context, out chan<- stage.Item) error
}

// Collect runs src.Emit, reads and releases every layer it sends, and
// returns what it sent sorted by Seq (config first), with Emit's error. A
// layer sent out of Seq order, or one whose release fails, fails the test.
func Collect(t testing.TB, src Emitter) ([]Got, error) {
	t.Helper()
	ctx := context.Background()
	out := make(chan stage.Item, 4)
	p := pool.New().WithErrors()
	p.Go(func() error { defer close(out); return src.Emit(ctx, out) })
	var items []Got
	for it := range out {
		g := Got{Kind: it.Kind, Seq: it.Seq, Name: it.Name, DiffID: it.DiffID, Skipped: it.Skipped()}
		switch {
		case it.Kind == stage.KindConfig:
			g.Sum = digest.FromBytes(it.Data)
		case it.Body != nil:
			rc, err := it.Body.Open()
			if err != nil {
				t.Fatal(err)
			}
			g.Sum, err = digest.FromReader(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := it.Release(); err != nil {
				t.Errorf("release layer %d: %v", it.Seq, err)
			}
		}
		items = append(items, g)
	}
	err := p.Wait()
	var seqs []int
	for _, it := range items {
		if it.Seq >= 0 {
			seqs = append(seqs, it.Seq)
		}
	}
	if !slices.IsSorted(seqs) {
		t.Errorf("layers emitted out of order: %v", seqs)
	}
	slices.SortStableFunc(items, func(a, b Got) int { return a.Seq - b.Seq })
	return items, err
}
