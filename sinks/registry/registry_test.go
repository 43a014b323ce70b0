package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

func TestMain(m *testing.M) {
	if os.Getenv(rssChildEnv) != "" {
		os.Exit(rssChild())
	}
	goleak.VerifyTestMain(m,
		// The registry app's background workers and the HTTP servers'
		// idle connections outlive a test by design of those libraries.
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// counter is a server-side wrapper counting requests by method and the
// request body bytes received.
type counter struct {
	mu       sync.Mutex
	byMethod map[string]int
	bodyIn   atomic.Int64
	mounts   atomic.Int64
}

func newCounter() *counter { return &counter{byMethod: map[string]int{}} }

func (c *counter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.byMethod[r.Method]++
		c.mu.Unlock()
		if r.URL.Query().Get("mount") != "" {
			c.mounts.Add(1)
		}
		if r.Body != nil {
			r.Body = &countBody{ReadCloser: r.Body, n: &c.bodyIn}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *counter) get(m string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byMethod[m]
}

func (c *counter) reset() {
	c.mu.Lock()
	c.byMethod = map[string]int{}
	c.mu.Unlock()
	c.bodyIn.Store(0)
	c.mounts.Store(0)
}

type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func newTransport(t *testing.T, regs []*testregistry.Registry, retries int) *transport.Transport {
	t.Helper()
	pool := regs[0].RootCAs()
	for _, r := range regs[1:] {
		if c := r.Certificate(); c != nil {
			pool.AddCert(c)
		}
	}
	tr, err := transport.New(transport.Options{
		RootCAs: pool, Retries: retries, NoRetries: retries < 0,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func regOpts(r *testregistry.Registry, plain bool) transport.RegistryOptions {
	return transport.RegistryOptions{Insecure: plain}
}

// pulled is an image pulled back.
type pulled struct {
	config  []byte
	diffIDs []digest.Digest
}

type collect struct {
	got pulled
	ids map[int]digest.Digest
}

func (c *collect) Properties() stage.SinkProperties { return stage.SinkProperties{} }

func (c *collect) Consume(ctx context.Context, in <-chan stage.Item) error {
	c.ids = map[int]digest.Digest{}
	for it := range in {
		switch it.Kind {
		case stage.KindConfig:
			c.got.config = it.Data
		case stage.KindLayer:
			c.ids[it.Seq] = it.DiffID
		}
		_ = it.Release()
	}
	for i := range len(c.ids) {
		c.got.diffIDs = append(c.got.diffIDs, c.ids[i])
	}
	return nil
}

// pull pulls host/repo:tag (DiffIDs verified against the config by the
// source) and returns the config and the DiffIDs of the layers.
func pull(t *testing.T, tr *transport.Transport, r *testregistry.Registry, plain bool, repo, tag string) pulled {
	t.Helper()
	src := registrysrc.New(tr, registrysrc.Options{Host: r.Host, Repo: repo, Tag: tag, Registry: regOpts(r, plain), TempDir: t.TempDir()})
	c := &collect{}
	if _, err := stage.Run(context.Background(), src, nil, c, stage.Options{}); err != nil {
		t.Fatalf("pull back %s:%s: %v", repo, tag, err)
	}
	var cfg v1.Image
	if err := json.Unmarshal(c.got.config, &cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg.RootFS.DiffIDs, c.got.diffIDs); diff != "" {
		t.Fatalf("pulled DiffIDs differ from the config's (-config +layers):\n%s", diff)
	}
	return c.got
}

func manifestOf(t *testing.T, tr *transport.Transport, r *testregistry.Registry, plain bool, repo, tag string) transport.Manifest {
	t.Helper()
	m, err := tr.Registry(r.Host, regOpts(r, plain)).GetManifest(context.Background(), repo, tag,
		[]string{mediatype.DockerManifest, v1.MediaTypeImageManifest})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var modes = []struct {
	name  string
	plain bool
}{{"tls-h2", false}, {"plain", true}}

func TestRegistryToRegistryPassthrough(t *testing.T) {
	for _, mode := range modes {
		for _, oci := range []bool{false, true} {
			t.Run(mode.name+map[bool]string{false: "/docker", true: "/oci"}[oci], func(t *testing.T) {
				ctx := context.Background()
				srcCount, dstCount := newCounter(), newCounter()
				src := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: srcCount.wrap})
				dst := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: dstCount.wrap})
				img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 7, Layers: 3, LayerSize: 200 << 10, OCI: oci})
				if err != nil {
					t.Fatal(err)
				}
				if err := src.Push(ctx, "base/app", "v1", img); err != nil {
					t.Fatal(err)
				}
				tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)

				push := func() *registrysink.Sink {
					s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(src, mode.plain), TempDir: t.TempDir()})
					k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1", Registry: regOpts(dst, mode.plain), ChunkSize: 128 << 10})
					if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
						t.Fatalf("push: %v", err)
					}
					return k
				}
				k := push()
				if k.Digest() != img.Digest {
					t.Errorf("destination digest %s, source %s", k.Digest(), img.Digest)
				}
				// One HEAD per blob (sent ahead when the manifest came,
				// used when the blob did), and the ping.
				if h, g := dstCount.get(http.MethodHead), dstCount.get(http.MethodGet); h != 4 || g != 1 {
					t.Errorf("%d HEAD, %d GET at the destination; want 4 and 1 (the ping)", h, g)
				}
				m := manifestOf(t, tr, dst, mode.plain, "copy/app", "v1")
				if m.Digest != img.Digest || m.MediaType != img.MediaType {
					t.Errorf("manifest %s %s, want %s %s", m.Digest, m.MediaType, img.Digest, img.MediaType)
				}
				if c := k.Counts(); c.Passthrough != 3 || c.Uploaded != 4 || c.BytesIn != 0 {
					t.Errorf("counts %+v: want 3 layers copied through, 4 blobs uploaded, nothing compressed", c)
				}
				got := pull(t, tr, dst, mode.plain, "copy/app", "v1")
				want := make([]digest.Digest, len(img.Layers))
				for i, l := range img.Layers {
					want[i] = l.DiffID
				}
				if diff := cmp.Diff(want, got.diffIDs); diff != "" {
					t.Errorf("DiffIDs (-want +got):\n%s", diff)
				}

				// A rerun sends nothing: every HEAD finds its blob.
				dstCount.reset()
				k = push()
				if c := k.Counts(); c.Uploaded != 0 || c.Existing != 4 {
					t.Errorf("rerun counts %+v: want nothing uploaded, 4 blobs found", c)
				}
				if n := dstCount.get(http.MethodPatch) + dstCount.get(http.MethodPost); n != 0 {
					t.Errorf("rerun sent %d POST/PATCH requests", n)
				}
				if n := dstCount.bodyIn.Load(); n > int64(len(img.Manifest)) {
					t.Errorf("rerun sent %d body bytes, want at most the manifest's %d", n, len(img.Manifest))
				}
			})
		}
	}
}

// sourceImage starts a source registry holding a 3-layer image (seed) as
// base/app:v1, and returns it, the image and its manifest.
func sourceImage(t *testing.T, seed uint64) (*testregistry.Registry, testregistry.Image, v1.Manifest) {
	t.Helper()
	src := testregistry.Start(t, testregistry.Options{})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: seed, Layers: 3, LayerSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(context.Background(), "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return src, img, m
}

// TestHeadAheadUsedBySink: the HEADs an output sends before its image runs
// (a bulk run's lookahead) are the ones its sink uses: the sink sends none
// of its own, and on a rerun the answers spare every upload.
func TestHeadAheadUsedBySink(t *testing.T) {
	ctx := context.Background()
	src, img, m := sourceImage(t, 11)
	dstCount := newCounter()
	dst := testregistry.Start(t, testregistry.Options{Wrap: dstCount.wrap})
	descs := append([]v1.Descriptor{m.Config}, m.Layers...)
	tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)
	for _, rerun := range []bool{false, true} { // a run each: nothing known but what the HEADs say
		dstCount.reset()
		out := registrysink.NewOutput(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1", Registry: regOpts(dst, false)})
		out.HeadAhead(ctx, descs, nil, nil)
		if h := dstCount.get(http.MethodHead); h != len(descs) {
			t.Fatalf("rerun %v: HeadAhead sent %d HEADs, want %d", rerun, h, len(descs))
		}
		k, err := out.Sink(stage.Image{Name: "base/app", Tag: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(src, false), TempDir: t.TempDir()})
		if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
			t.Fatalf("rerun %v: push: %v", rerun, err)
		}
		if h := dstCount.get(http.MethodHead); h != len(descs) {
			t.Errorf("rerun %v: %d HEADs in all, want only HeadAhead's %d", rerun, h, len(descs))
		}
		c := k.(*registrysink.Sink).Counts()
		switch {
		case !rerun && c.Uploaded != 4:
			t.Errorf("first push counts %+v: want 4 blobs uploaded", c)
		case rerun && (c.Uploaded != 0 || c.Existing != 4 || dstCount.get(http.MethodPost) != 0):
			t.Errorf("rerun counts %+v, %d POSTs: want the 4 blobs found by the HEADs sent ahead, none sent", c, dstCount.get(http.MethodPost))
		}
		if got := manifestOf(t, tr, dst, false, "copy/app", "v1"); got.Digest != img.Digest {
			t.Errorf("rerun %v: destination digest %s, want %s", rerun, got.Digest, img.Digest)
		}
	}
}

// TestHeadAheadCopies: HeadAhead copies the blobs it is given a source for
// and the destination lacks, before the image runs; the sink then sends
// only the rest, counts the copies as its uploads, and sends no HEAD. Into
// a second repository, HeadAhead mounts what the run pushed to the first.
func TestHeadAheadCopies(t *testing.T) {
	ctx := context.Background()
	src, img, m := sourceImage(t, 12)
	dstCount := newCounter()
	dst := testregistry.Start(t, testregistry.Options{Wrap: dstCount.wrap})
	descs := append([]v1.Descriptor{m.Config}, m.Layers...)
	tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)
	srcReg := tr.Registry(src.Host, regOpts(src, false))

	pushed := registrysink.NewPushed()
	out := registrysink.NewOutput(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1", Registry: regOpts(dst, false), Pushed: pushed})
	slots := make(chan struct{}, 1)
	ahead := registrysink.NewAhead(slots)
	// Layer 0 is another image's: HeadAhead waits for that image to push
	// it, which here is this image's own sink, run while it waits.
	aheadDone := make(chan struct{})
	var wg conc.WaitGroup
	defer wg.Wait()
	actx, cancelAhead := context.WithCancel(ctx)
	defer cancelAhead()
	wg.Go(func() {
		defer close(aheadDone)
		out.HeadAhead(actx, descs, func(d v1.Descriptor) transport.Opener {
			if d.Digest == m.Layers[0].Digest {
				return nil
			}
			return func(ctx context.Context) (io.ReadCloser, error) {
				return srcReg.Blob(ctx, "base/app", d.Digest, d.Size)
			}
		}, ahead)
	})
	dstReg := tr.Registry(dst.Host, regOpts(dst, false))
	for i, d := range descs { // the copies ahead land
		for i != 1 {
			there, _, err := dstReg.BlobExists(ctx, "copy/app", d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if there {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	select {
	case <-aheadDone:
		t.Fatal("HeadAhead returned before the blob it waits for was pushed")
	default:
	}
	dstCount.reset()
	k, err := out.Sink(stage.Image{Name: "base/app", Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(src, false), TempDir: t.TempDir()})
	if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	if h, p := dstCount.get(http.MethodHead), dstCount.get(http.MethodPost); h != 0 || p != 1 {
		t.Errorf("the sink sent %d HEADs and %d POSTs, want none and 1 (the one blob not copied ahead)", h, p)
	}
	select { // the sink pushed layer 0: HeadAhead found it there and returned
	case <-aheadDone:
	case <-time.After(10 * time.Second):
		t.Fatal("HeadAhead still waiting after the blob was pushed")
	}
	if len(slots) != 0 {
		t.Errorf("%d slots still held after HeadAhead", len(slots))
	}
	if c := k.(*registrysink.Sink).Counts(); c.Uploaded != 4 || c.Existing != 0 {
		t.Errorf("counts %+v: want 4 blobs uploaded (3 of them ahead), none found", c)
	}
	if got := manifestOf(t, tr, dst, false, "copy/app", "v1"); got.Digest != img.Digest {
		t.Errorf("destination digest %s, want %s", got.Digest, img.Digest)
	}

	// The same image into another repository of the run: every blob is
	// mounted ahead from the first, and the sink only pushes the manifest.
	dstCount.reset()
	two := registrysink.NewOutput(tr, registrysink.Options{Host: dst.Host, Repo: "copy/two", Tag: "v1", Registry: regOpts(dst, false), Pushed: pushed})
	two.HeadAhead(ctx, descs, func(v1.Descriptor) transport.Opener { return nil }, ahead)
	if n := dstCount.mounts.Load(); n != 4 {
		t.Errorf("HeadAhead sent %d mounts, want 4", n)
	}
	dstCount.reset()
	k, err = two.Sink(stage.Image{Name: "base/app", Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	s = registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(src, false), TempDir: t.TempDir()})
	if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	if h, p, pu := dstCount.get(http.MethodHead), dstCount.get(http.MethodPost), dstCount.get(http.MethodPut); h != 0 || p != 0 || pu != 1 {
		t.Errorf("the sink sent %d HEADs, %d POSTs and %d PUTs, want only the manifest's PUT", h, p, pu)
	}
	if c := k.(*registrysink.Sink).Counts(); c.Mounted != 4 || c.Uploaded != 0 {
		t.Errorf("counts %+v: want the 4 blobs mounted (ahead)", c)
	}
	if got := manifestOf(t, tr, dst, false, "copy/two", "v1"); got.Digest != img.Digest {
		t.Errorf("second destination digest %s, want %s", got.Digest, img.Digest)
	}
}

// TestHeadAheadBounded: a manifest naming many blobs (a hostile one may
// name thousands) gets its HEADs ahead a bounded number at a time, every
// one of them sent; the outputs of a run share a run-wide bound.
func TestHeadAheadBounded(t *testing.T) {
	var mu sync.Mutex
	inFlight, most, heads := 0, 0, 0
	dst := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead {
				mu.Lock()
				inFlight++
				heads++
				most = max(most, inFlight)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // so that unbounded HEADs would overlap
				defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
			}
			next.ServeHTTP(w, r)
		})
	}})
	tr := newTransport(t, []*testregistry.Registry{dst}, 3)
	var descs []v1.Descriptor
	for i := range 200 {
		descs = append(descs, v1.Descriptor{Digest: digest.FromString(fmt.Sprint(i)), Size: 1})
	}
	for _, c := range []struct {
		name    string
		outputs int
		ahead   *registrysink.Ahead
		bound   int
	}{
		{"one image", 1, nil, 16},
		{"three images, one run", 3, registrysink.NewAhead(make(chan struct{}, 2)), 4},
	} {
		mu.Lock()
		most, heads = 0, 0
		mu.Unlock()
		var wg conc.WaitGroup
		for i := range c.outputs {
			out := registrysink.NewOutput(tr, registrysink.Options{Host: dst.Host, Repo: fmt.Sprintf("many/app%d", i), Tag: "v1", Registry: regOpts(dst, false)})
			wg.Go(func() { out.HeadAhead(context.Background(), descs, nil, c.ahead) })
		}
		wg.Wait()
		mu.Lock()
		if heads != c.outputs*len(descs) {
			t.Errorf("%s: %d HEADs sent, want %d", c.name, heads, c.outputs*len(descs))
		}
		if most > c.bound {
			t.Errorf("%s: %d HEADs at once, want at most %d", c.name, most, c.bound)
		}
		mu.Unlock()
	}
}

func TestSameRegistryMounts(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			cnt := newCounter()
			r := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: cnt.wrap, Auth: testregistry.AuthToken})
			img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 3, Layers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Push(ctx, "base/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, []*testregistry.Registry{r}, 3)
			before := tr.Stats()
			s := registrysrc.New(tr, registrysrc.Options{Host: r.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(r, mode.plain), TempDir: t.TempDir()})
			k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "other/app", Tag: "v2", Registry: regOpts(r, mode.plain)})
			if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
				t.Fatal(err)
			}
			// The config too: nothing is uploaded.
			if c := k.Counts(); c.Mounted != 3 || c.Uploaded != 0 {
				t.Errorf("counts %+v: want the config and both layers mounted, nothing uploaded", c)
			}
			if st := tr.Stats(); st.BlobMounts-before.BlobMounts != 3 {
				t.Errorf("transport counted %d mounts, want 3", st.BlobMounts-before.BlobMounts)
			}
			if n := cnt.get(http.MethodPut) + cnt.get(http.MethodPatch); n != 1 {
				t.Errorf("%d PUT/PATCH requests, want only the manifest's", n)
			}
			if k.Digest() != img.Digest {
				t.Errorf("digest %s, want %s", k.Digest(), img.Digest)
			}
			pull(t, tr, r, mode.plain, "other/app", "v2")
		})
	}
}

// writeArchive writes a docker-save archive of img and returns its path.
func writeArchive(t *testing.T, img fixture.Image, c fixture.Compression, oci bool) (string, *fixture.Archive) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var a *fixture.Archive
	if oci {
		a, err = fixture.WriteOCIArchive(f, img, c)
	} else {
		a, err = fixture.WriteLegacyArchive(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, a
}

func fixtureImage() fixture.Image {
	return fixture.Image{Name: "fixture/app", Tag: "v1", Layers: []fixture.Layer{
		{fixture.Dir("bin", 0o755), fixture.File("bin/sh", "#!/bin/sh\n", 0o755)},
		{fixture.RandomFile("opt/app/data", 300<<10, 1), fixture.Whiteout("opt/app/old.conf")},
		{fixture.File("etc/motd", strings.Repeat("hello\n", 1000), 0o644).WithMtime(time.Unix(1700000000, 5))},
	}}
}

func TestTarToRegistry(t *testing.T) {
	cases := []struct {
		name        string
		oci         bool
		comp        fixture.Compression
		compression string
		passthrough bool
	}{
		{"legacy-gzip", false, fixture.Uncompressed, registrysink.Gzip, false},
		{"legacy-zstd", false, fixture.Uncompressed, registrysink.Zstd, false},
		{"oci-gzip-blobs", true, fixture.Gzip, registrysink.Gzip, true},
	}
	for _, mode := range modes {
		for _, tc := range cases {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				cnt := newCounter()
				r := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: cnt.wrap})
				tr := newTransport(t, []*testregistry.Registry{r}, 3)
				path, a := writeArchive(t, fixtureImage(), tc.comp, tc.oci)
				cache, warn := layercache.Open(filepath.Join(t.TempDir(), "sub", "cache.json"))
				if warn != nil {
					t.Fatal(warn)
				}
				hash := layercache.FiltersHash(tc.compression, nil)
				push := func() *registrysink.Sink {
					src, err := tarballsrc.Open(path)
					if err != nil {
						t.Fatal(err)
					}
					defer src.Close()
					k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "fixture/app", Tag: "v1", Registry: regOpts(r, mode.plain),
						Compression: tc.compression, Cache: cache, FiltersHash: hash, ChunkSize: 64 << 10})
					if _, err := stage.Run(ctx, src, nil, k, stage.Options{}); err != nil {
						t.Fatalf("push: %v", err)
					}
					return k
				}
				k := push()
				if c := k.Counts(); (c.Passthrough == 3) != tc.passthrough {
					t.Errorf("counts %+v, passthrough %v", c, tc.passthrough)
				}
				m := manifestOf(t, tr, r, mode.plain, "fixture/app", "v1")
				wantManifest, wantConfig, wantMT := mediatype.DockerManifest, mediatype.DockerConfig, mediatype.DockerGzip
				if tc.compression == registrysink.Zstd {
					wantManifest, wantConfig, wantMT = v1.MediaTypeImageManifest, v1.MediaTypeImageConfig, v1.MediaTypeImageLayerZstd
				}
				if m.MediaType != wantManifest {
					t.Errorf("manifest media type %s, want %s", m.MediaType, wantManifest)
				}
				var man struct {
					SchemaVersion int
					Layers        []v1.Descriptor
				}
				if err := json.Unmarshal(m.Body, &man); err != nil {
					t.Fatal(err)
				}
				for _, l := range man.Layers {
					if l.MediaType != wantMT {
						t.Errorf("layer media type %s, want %s", l.MediaType, wantMT)
					}
				}
				if !strings.HasPrefix(string(m.Body), `{"schemaVersion":2,"mediaType":"`+wantManifest+`","config":{"mediaType":"`+wantConfig+`","size":`) {
					t.Errorf("manifest is not compact schema 2 in the original's key order: %s", m.Body)
				}
				got := pull(t, tr, r, mode.plain, "fixture/app", "v1")
				if diff := cmp.Diff(a.DiffIDs, got.diffIDs); diff != "" {
					t.Errorf("DiffIDs (-want +got):\n%s", diff)
				}
				if string(got.config) != string(a.Config) {
					t.Errorf("config changed on the way")
				}
				if !tc.passthrough && cache.Len() != 3 {
					t.Errorf("layer cache has %d entries, want 3", cache.Len())
				}

				// A rerun uploads nothing (passthrough: HEADs; recompressed:
				// the layer cache, confirmed by HEADs).
				cnt.reset()
				k = push()
				c := k.Counts()
				if c.Uploaded != 0 {
					t.Errorf("rerun counts %+v: want nothing uploaded", c)
				}
				if !tc.passthrough && c.CacheHits != 3 {
					t.Errorf("rerun counts %+v: want 3 cache hits", c)
				}
				if n := cnt.get(http.MethodPatch) + cnt.get(http.MethodPost); n != 0 {
					t.Errorf("rerun sent %d POST/PATCH requests", n)
				}
				if d := manifestOf(t, tr, r, mode.plain, "fixture/app", "v1").Digest; d != m.Digest {
					t.Errorf("rerun changed the manifest: %s, then %s (compression is not deterministic)", m.Digest, d)
				}
			})
		}
	}
}

func TestFilterToRegistry(t *testing.T) {
	ctx := context.Background()
	src := testregistry.Start(t, testregistry.Options{})
	dst := testregistry.Start(t, testregistry.Options{})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 9, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)
	var digests []digest.Digest
	for range 2 {
		s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", TempDir: t.TempDir()})
		f := filter.NewNormalizeTimestamps(0, filter.Options{TempDir: t.TempDir(), Parallel: 2})
		k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "norm/app", Tag: "v1", ChunkSize: 32 << 10})
		if _, err := stage.Run(ctx, s, []stage.Stage{f}, k, stage.Options{}); err != nil {
			t.Fatal(err)
		}
		if c := k.Counts(); c.Passthrough != 0 || c.BytesIn == 0 {
			t.Errorf("counts %+v: want every layer recompressed", c)
		}
		digests = append(digests, k.Digest())
	}
	if digests[0] != digests[1] {
		t.Errorf("two runs gave %s and %s: the push is not deterministic", digests[0], digests[1])
	}
	got := pull(t, tr, dst, false, "norm/app", "v1")
	if len(got.diffIDs) != 2 {
		t.Fatalf("pulled %d layers", len(got.diffIDs))
	}
	m := manifestOf(t, tr, dst, false, "norm/app", "v1")
	if m.MediaType != mediatype.DockerManifest {
		t.Errorf("media type %s", m.MediaType)
	}
}

func TestRunPushesMountAcrossRepositories(t *testing.T) {
	ctx := context.Background()
	cnt := newCounter()
	r := testregistry.Start(t, testregistry.Options{Wrap: cnt.wrap})
	tr := newTransport(t, []*testregistry.Registry{r}, 3)
	path, _ := writeArchive(t, fixtureImage(), fixture.Uncompressed, false)
	pushed := registrysink.NewPushed() // what a run's sinks share
	var counts []registrysink.Counts
	for _, repo := range []string{"a/app", "b/app"} {
		src, err := tarballsrc.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: repo, Tag: "v1", Pushed: pushed})
		if _, err := stage.Run(ctx, src, nil, k, stage.Options{}); err != nil {
			t.Fatal(err)
		}
		src.Close()
		counts = append(counts, k.Counts())
	}
	if counts[1].Mounted != 4 || counts[1].Uploaded != 0 {
		t.Errorf("second repository counts %+v: want config and 3 layers mounted", counts[1])
	}
	if n := cnt.mounts.Load(); n != 4 {
		t.Errorf("registry saw %d mount requests, want 4", n)
	}
	pull(t, tr, r, false, "b/app", "v1")
}

func TestCutUploadResumes(t *testing.T) {
	for _, mode := range modes {
		for _, retries := range []int{3, -1} {
			t.Run(mode.name+map[bool]string{true: "/transport-retry", false: "/status-resume"}[retries > 0], func(t *testing.T) {
				ctx := context.Background()
				// Cut a streamed chunk, and (with retries) the resumed one too.
				cuts := 1
				if retries > 0 {
					cuts = 2
				}
				inj := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.CutUpload, Match: testregistry.IsBlobPatch, Times: cuts})
				r := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: inj.Wrap})
				tr := newTransport(t, []*testregistry.Registry{r}, retries)
				path, a := writeArchive(t, fixtureImage(), fixture.Uncompressed, false)
				src, err := tarballsrc.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "cut/app", Tag: "v1", Registry: regOpts(r, mode.plain), ChunkSize: 32 << 10, Workers: 1})
				if _, err := stage.Run(ctx, src, nil, k, stage.Options{}); err != nil {
					t.Fatalf("push: %v", err)
				}
				if n := inj.Fired(testregistry.CutUpload); n != cuts {
					t.Errorf("%d uploads cut, want %d", n, cuts)
				}
				if st := tr.Stats(); st.UploadResumes != int64(cuts) {
					t.Errorf("%d upload resumes, want %d", st.UploadResumes, cuts)
				}
				got := pull(t, tr, r, mode.plain, "cut/app", "v1")
				if diff := cmp.Diff(a.DiffIDs, got.diffIDs); diff != "" {
					t.Errorf("DiffIDs (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestFailedBlobPushesNoManifest(t *testing.T) {
	ctx := context.Background()
	inj := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Unavailable, Times: -1,
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
		}})
	cnt := newCounter()
	r := testregistry.Start(t, testregistry.Options{Wrap: func(h http.Handler) http.Handler { return cnt.wrap(inj.Wrap(h)) }})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	path, _ := writeArchive(t, fixtureImage(), fixture.Uncompressed, false)
	src, err := tarballsrc.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "fail/app", Tag: "v1"})
	_, err = stage.Run(ctx, src, nil, k, stage.Options{})
	if !errors.Is(err, registrysink.ErrUploadFailed) || !strings.HasPrefix(err.Error(), "Upload failed: ") {
		t.Fatalf("error %v, want Upload failed", err)
	}
	if n := cnt.get(http.MethodPut) - inj.Fired(testregistry.Unavailable); n != 0 {
		t.Errorf("%d PUTs got through (a manifest?)", n)
	}
	_, err = tr.Registry(r.Host, transport.RegistryOptions{}).GetManifest(ctx, "fail/app", "v1", []string{mediatype.DockerManifest})
	if !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("manifest after a failed push: %v, want not found", err)
	}
}

type layersOnly struct{}

func (layersOnly) Properties() stage.SourceProperties { return stage.SourceProperties{} }

func (layersOnly) Emit(ctx context.Context, out chan<- stage.Item) error {
	tarBytes := fixture.LayerTar(fixture.Layer{fixture.File("a", "b", 0o644)})
	return stage.Send(ctx, out, stage.Item{Seq: 0, Kind: stage.KindLayer, Name: "x", Size: int64(len(tarBytes)),
		Body: &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(tarBytes))), nil }}})
}

func TestNoConfig(t *testing.T) {
	r := testregistry.Start(t, testregistry.Options{})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "noconf/app", Tag: "v1"})
	_, err := stage.Run(context.Background(), layersOnly{}, nil, k, stage.Options{})
	if !errors.Is(err, registrysink.ErrNoConfig) || err.Error() != "No config file was processed" {
		t.Fatalf("error %v, want %v", err, registrysink.ErrNoConfig)
	}
}

func TestPassthroughCorruptSourceBlobFails(t *testing.T) {
	ctx := context.Background()
	inj := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Corrupt, Match: testregistry.IsBlobGet, Times: -1})
	src := testregistry.Start(t, testregistry.Options{Wrap: inj.Wrap})
	dst := testregistry.Start(t, testregistry.Options{})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 4, Layers: 1, LayerSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, []*testregistry.Registry{src, dst}, 1)
	s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", TempDir: t.TempDir()})
	k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1", ChunkSize: 16 << 10})
	_, err = stage.Run(ctx, s, nil, k, stage.Options{})
	if !errors.Is(err, transport.ErrDigestMismatch) {
		t.Fatalf("error %v, want a digest mismatch", err)
	}
	_, err = tr.Registry(dst.Host, transport.RegistryOptions{}).GetManifest(ctx, "copy/app", "v1", []string{mediatype.DockerManifest})
	if !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("manifest after a failed copy: %v, want not found", err)
	}
}

func TestPassthroughThroughSearch(t *testing.T) {
	ctx := context.Background()
	src := testregistry.Start(t, testregistry.Options{})
	dst := testregistry.Start(t, testregistry.Options{})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 8, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)
	s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", TempDir: t.TempDir()})
	var found strings.Builder
	search, err := filter.NewSearch(stage.Image{Name: "base/app", Tag: "v1"}, &found, filter.SearchOptions{Pattern: "*", ScriptFriendly: true})
	if err != nil {
		t.Fatal(err)
	}
	k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1"})
	if _, err := stage.Run(ctx, s, []stage.Stage{search}, k, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	if k.Digest() != img.Digest {
		t.Errorf("digest %s, want the source's %s", k.Digest(), img.Digest)
	}
	if found.Len() == 0 {
		t.Error("search saw no members: the passthrough bodies did not decompress")
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	r := testregistry.Start(t, testregistry.Options{})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	path, _ := writeArchive(t, fixtureImage(), fixture.Uncompressed, false)
	img := stage.Image{Name: "fixture/app", Tag: "v1"}
	out := registrysink.NewOutput(tr, registrysink.Options{Host: r.Host, Repo: "ver/app", Tag: "v1"})
	problems, err := out.Verify(ctx, img, false)
	if err != nil || len(problems) != 1 || problems[0] != "Manifest not found" {
		t.Fatalf("before the push: %v, %v; want Manifest not found", problems, err)
	}
	src, err := tarballsrc.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	k, err := out.Sink(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stage.Run(ctx, src, nil, k, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	problems, err = out.Verify(ctx, img, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("after the push: %v, %v; want no problems", problems, err)
	}
	// Another image's manifest under the tag: the config no longer matches.
	other, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 1, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, "ver/app", "v1", other); err != nil {
		t.Fatal(err)
	}
	problems, err = out.Verify(ctx, img, false)
	if err != nil || len(problems) == 0 || !strings.HasPrefix(problems[0], "config digest mismatch") {
		t.Errorf("after replacing the image: %v, %v; want config digest mismatch", problems, err)
	}
}

func TestMountRefusedFallsBackToUpload(t *testing.T) {
	ctx := context.Background()
	cnt := newCounter()
	r := testregistry.Start(t, testregistry.Options{Wrap: cnt.wrap})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	path, a := writeArchive(t, fixtureImage(), fixture.Uncompressed, false)
	cfg := digest.FromBytes(a.Config)
	pushed := registrysink.NewPushed()
	pushed.Add(r.Host, cfg, "nowhere/app") // wrong: the registry answers 202
	src, err := tarballsrc.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "fallback/app", Tag: "v1", Pushed: pushed})
	if _, err := stage.Run(ctx, src, nil, k, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := cnt.mounts.Load(); n != 1 {
		t.Errorf("%d mount requests, want 1", n)
	}
	if c := k.Counts(); c.Mounted != 0 || c.Uploaded != 4 {
		t.Errorf("counts %+v: want no mount, 4 uploads", c)
	}
	pull(t, tr, r, false, "fallback/app", "v1")
}

// TestPassthroughWholePutResent: copied blobs (known digest and size) go
// in one streamed PUT after the POST, no PATCH; a PUT cut mid-body is sent
// again in a new session, and the copy keeps the source's digest.
func TestPassthroughWholePutResent(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			cnt := newCounter()
			inj := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.CutUpload, Times: 1,
				Match: func(r *http.Request) bool {
					return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 100<<10
				}})
			src := testregistry.Start(t, testregistry.Options{Plain: mode.plain})
			dst := testregistry.Start(t, testregistry.Options{Plain: mode.plain, Wrap: func(h http.Handler) http.Handler { return cnt.wrap(inj.Wrap(h)) }})
			img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 9, Layers: 2, LayerSize: 300 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Push(ctx, "base/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, []*testregistry.Registry{src, dst}, 3)
			s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "base/app", Tag: "v1", Registry: regOpts(src, mode.plain), TempDir: t.TempDir()})
			k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "copy/app", Tag: "v1", Registry: regOpts(dst, mode.plain)})
			if _, err := stage.Run(ctx, s, nil, k, stage.Options{}); err != nil {
				t.Fatalf("push: %v", err)
			}
			if k.Digest() != img.Digest {
				t.Errorf("destination digest %s, source %s", k.Digest(), img.Digest)
			}
			if n := inj.Fired(testregistry.CutUpload); n != 1 {
				t.Errorf("%d PUTs cut, want 1", n)
			}
			if st := tr.Stats(); st.UploadResumes != 1 {
				t.Errorf("%d uploads sent again, want 1", st.UploadResumes)
			}
			// 3 blobs, one sent twice: 4 sessions, 4 blob PUTs and the manifest's.
			if p, po, pu := cnt.get(http.MethodPatch), cnt.get(http.MethodPost), cnt.get(http.MethodPut); p != 0 || po != 4 || pu != 5 {
				t.Errorf("%d PATCH, %d POST, %d PUT; want 0, 4, 5", p, po, pu)
			}
			got := pull(t, tr, dst, mode.plain, "copy/app", "v1")
			want := make([]digest.Digest, len(img.Layers))
			for i, l := range img.Layers {
				want[i] = l.DiffID
			}
			if diff := cmp.Diff(want, got.diffIDs); diff != "" {
				t.Errorf("DiffIDs (-want +got):\n%s", diff)
			}
		})
	}
}
