package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/stage"
	"github.com/sourcegraph/conc/pool"
)

// TestBlobsLeadFails: a waiter whose lead fails fetches the layer itself,
// and the file goes away with the last release.
func TestBlobsLeadFails(t *testing.T) {
	t.Parallel()
	b := NewBlobs()
	d := digest.FromString("layer")
	tmp := t.TempDir()
	started, fail := make(chan struct{}), make(chan struct{})
	boom := errors.New("boom")
	leadErr := make(chan error, 1)
	p := pool.New()
	defer p.Wait()
	p.Go(func() {
		_, err := b.layer(context.Background(), 0, d, nil, func(ctx context.Context) (stage.Item, error) {
			close(started)
			<-fail
			return stage.Item{}, boom
		})
		leadErr <- err
	})
	<-started
	fetches := 0
	fetch := func(ctx context.Context) (stage.Item, error) {
		fetches++
		p := filepath.Join(tmp, "l.tar")
		if err := os.WriteFile(p, []byte("tar"), 0o600); err != nil {
			return stage.Item{}, err
		}
		return stage.Item{Seq: 1, Kind: stage.KindLayer, Name: d.Encoded(), DiffID: digest.FromString("tar"), Size: 3,
			Body: &stage.FileBody{Path: p, Temp: true}}, nil
	}
	res := make(chan stage.Item, 1)
	waitErr := make(chan error, 1)
	p.Go(func() {
		it, err := b.layer(context.Background(), 1, d, nil, fetch)
		res <- it
		waitErr <- err
	})
	// Let the waiter join, then fail the lead.
	for {
		b.mu.Lock()
		refs := b.flights[d].refs
		b.mu.Unlock()
		if refs == 2 {
			break
		}
	}
	close(fail)
	if err := <-leadErr; !errors.Is(err, boom) {
		t.Fatalf("lead: %v", err)
	}
	it := <-res
	if err := <-waitErr; err != nil || fetches != 1 || it.Body == nil || it.Size != 3 {
		t.Fatalf("waiter: %v, %d fetches, %+v", err, fetches, it)
	}
	// A third sharer joins while the file is held.
	it2, err := b.layer(context.Background(), 2, d, nil, fetch)
	if err != nil || fetches != 1 || it2.Seq != 2 {
		t.Fatalf("sharer: %v, %d fetches", err, fetches)
	}
	_ = it.Release()
	_ = it.Release() // twice is once
	if _, err := os.Stat(filepath.Join(tmp, "l.tar")); err != nil {
		t.Errorf("file gone while shared: %v", err)
	}
	_ = it2.Release()
	if _, err := os.Stat(filepath.Join(tmp, "l.tar")); !os.IsNotExist(err) {
		t.Errorf("file left after the last release: %v", err)
	}
	if st := b.Stats(); st != (BlobStats{Fetched: 1, Shared: 1}) {
		t.Errorf("stats %+v", st)
	}
}
