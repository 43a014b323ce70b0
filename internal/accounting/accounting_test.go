package accounting

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCountsFromManyGoroutines(t *testing.T) {
	r := NewRun()
	r.SetTotal(2)
	a, b := r.Image("a"), r.Image("b")
	if r.Image("a") != a {
		t.Fatal("Image does not return the same counters for the same name")
	}
	a.Start()
	b.Start()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			a.Expect(100)
			rc := a.Reader(io.NopCloser(strings.NewReader(strings.Repeat("x", 100))))
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Error(err)
			}
			a.Layer()
		})
	}
	wg.Wait()
	b.Add(5)
	a.Finish(nil)
	b.Finish(errors.New("boom"))
	a.SetDigest("sha256:ab")
	s := r.Snapshot()
	if s.Bytes != 805 || s.BytesKnown != 805 || s.Layers != 8 {
		t.Errorf("snapshot bytes %d known %d layers %d, want 805 805 8", s.Bytes, s.BytesKnown, s.Layers)
	}
	if s.ImagesDone != 1 || s.ImagesFailed != 1 || s.ImagesTotal != 2 || len(s.Running) != 0 {
		t.Errorf("images done %d failed %d total %d running %d", s.ImagesDone, s.ImagesFailed, s.ImagesTotal, len(s.Running))
	}
	if s.Images[0].Digest != "sha256:ab" || s.Images[1].BytesKnown != 5 {
		t.Errorf("figures %+v", s.Images)
	}
}

func TestNilImageAndContext(t *testing.T) {
	im := FromContext(context.Background())
	im.Expect(1)
	im.Add(1)
	im.Layer()
	im.Start()
	im.Finish(nil)
	rc := io.NopCloser(strings.NewReader("x"))
	if im.Reader(rc) != rc || im.SourceFed() || im.Digest() != "" {
		t.Error("a nil image is not inert")
	}
	r := NewRun()
	ctx := WithImage(context.Background(), r.Image("x"))
	FromContext(ctx).SetSourceFed()
	if !r.Image("x").SourceFed() {
		t.Error("the context does not carry the image")
	}
}

func TestRateAndETA(t *testing.T) {
	if got := Rate(100, 2*time.Second); got != 50 {
		t.Errorf("rate %v", got)
	}
	if d, ok := ETA(50, 150, 50); !ok || d != 2*time.Second {
		t.Errorf("eta %v %v", d, ok)
	}
	if _, ok := ETA(0, 0, 0); ok {
		t.Error("an ETA with nothing known")
	}
}
