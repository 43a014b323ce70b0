package registry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// TestConnectionReuse: a 10-layer pull over TLS (token auth, 8 workers)
// opens one connection with one TLS handshake, and a second image from the
// same registry in the same process reuses both and the token.
func TestConnectionReuse(t *testing.T) {
	ctx := context.Background()
	var notH2 atomic.Int64
	reg := testregistry.Start(t, testregistry.Options{Auth: testregistry.AuthToken, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 {
				notH2.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}})
	a := mustImage(t, testregistry.ImageOptions{Seed: 40, Layers: 10, LayerSize: 128 << 10})
	b := mustImage(t, testregistry.ImageOptions{Seed: 41, Layers: 10, LayerSize: 128 << 10})
	if err := reg.Push(ctx, "fixture/app", "a", a); err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(ctx, "fixture/app", "b", b); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, reg, nil)

	type counts struct{ ServerConns, Conns, Handshakes, Tokens int64 }
	for i, c := range []struct {
		tag  string
		img  testregistry.Image
		want counts
	}{
		{"a", a, counts{1, 1, 1, 1}},
		{"b", b, counts{1, 1, 1, 1}},
	} {
		res, _, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: c.tag, workers: 8})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want(c.img), res); diff != "" {
			t.Errorf("image %s differs (-want +got):\n%s", c.tag, diff)
		}
		st := tr.Stats()
		got := counts{reg.NewConns(), st.Connections, st.TLSHandshakes, reg.TokensIssued()}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("after image %d (%s): counts differ (-want +got):\n%s", i+1, c.tag, diff)
		}
		if n := notH2.Load(); n != 0 {
			t.Errorf("%d requests did not use HTTP/2", n)
		}
		t.Logf("after image %d: server connections %d, client connections %d, TLS handshakes %d, tokens %d, requests %d, bytes in %d",
			i+1, got.ServerConns, st.Connections, st.TLSHandshakes, got.Tokens, st.Requests, st.BytesIn)
	}
}

// discard is a sink that reads and drops every layer.
type discard struct{}

func (discard) Properties() stage.SinkProperties { return stage.SinkProperties{} }

func (discard) Consume(ctx context.Context, in <-chan stage.Item) error {
	for it := range in {
		if it.Body != nil {
			rc, err := it.Body.Open()
			if err != nil {
				_ = it.Release()
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				_ = it.Release()
				return err
			}
		}
		if err := it.Release(); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkPull pulls a 10-layer image (1 MiB per layer) over TLS+HTTP/2
// with 20 ms of latency injected in front of every request, at 1 and 8
// workers. The bytes are the uncompressed layers.
func BenchmarkPull(b *testing.B) {
	ctx := context.Background()
	for _, lat := range []time.Duration{20 * time.Millisecond} {
		reg := testregistry.Start(b, testregistry.Options{Auth: testregistry.AuthToken, Wrap: testregistry.Latency(lat)})
		img := mustImage(b, testregistry.ImageOptions{Seed: 50, Layers: 10, LayerSize: 1 << 20})
		if err := reg.Push(ctx, "bench/app", "v1", img); err != nil {
			b.Fatal(err)
		}
		var total int64
		for _, l := range img.Layers {
			total += int64(len(l.Tar))
		}
		for _, workers := range []int{1, 8} {
			b.Run(fmt.Sprintf("latency=%s/j=%d", lat, workers), func(b *testing.B) {
				tr := newTransport(b, reg, nil)
				tmp := b.TempDir()
				b.SetBytes(total)
				b.ReportAllocs()
				for b.Loop() {
					src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: "bench/app", Tag: "v1", Workers: workers, TempDir: tmp,
						Registry: transport.RegistryOptions{}})
					if _, err := stage.Run(ctx, src, nil, discard{}, stage.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				st := tr.Stats()
				b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
				b.ReportMetric(float64(st.Connections), "conns")
			})
		}
	}
}

// TestWorkersBound: at most Workers layer downloads (plus the config) are in
// flight at once.
func TestWorkersBound(t *testing.T) {
	ctx := context.Background()
	var inFlight, peak atomic.Int64
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testregistry.IsBlobGet(r) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(h http.Handler) http.Handler {
		return count(testregistry.Latency(5 * time.Millisecond)(h))
	}})
	img := mustImage(t, testregistry.ImageOptions{Seed: 42, Layers: 8, LayerSize: 16 << 10})
	if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	res, _, err := pull(t, newTransport(t, reg, nil), reg, pullOpts{repo: "fixture/app", tag: "v1", workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want(img), res); diff != "" {
		t.Errorf("pulled image differs (-want +got):\n%s", diff)
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d blob downloads at once, want at most 2 layers and the config", p)
	}
}
