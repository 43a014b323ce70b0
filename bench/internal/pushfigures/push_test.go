package pushfigures

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage/layercache"

	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// setup starts a source and a destination registry (plain HTTP, on disk, so crane
// and occystrap talk to them alike) and seeds the source with an image of
// layers random (incompressible) layers of size bytes.
func setup(tb testing.TB, layers, size int) (src, dst *testregistry.Registry, img testregistry.Image) {
	tb.Helper()
	src = testregistry.Start(tb, testregistry.Options{Plain: true, RootDirectory: tb.TempDir()})
	dst = testregistry.Start(tb, testregistry.Options{Plain: true, RootDirectory: tb.TempDir()})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 11, Layers: layers, LayerSize: size})
	if err != nil {
		tb.Fatal(err)
	}
	if err := src.Push(context.Background(), "bench/app", "v1", img); err != nil {
		tb.Fatal(err)
	}
	return src, dst, img
}

func occyCopy(tb testing.TB, tr *transport.Transport, src, dst *testregistry.Registry, repo string) *registrysink.Sink {
	tb.Helper()
	s := registrysrc.New(tr, registrysrc.Options{Host: src.Host, Repo: "bench/app", Tag: "v1", Registry: transport.RegistryOptions{Insecure: true}, TempDir: tb.TempDir()})
	k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: repo, Tag: "v1", Registry: transport.RegistryOptions{Insecure: true}})
	if _, err := stage.Run(context.Background(), s, nil, k, stage.Options{Window: 8, Buffer: 4}); err != nil {
		tb.Fatal(err)
	}
	return k
}

func craneCopy(tb testing.TB, bin string, src, dst *testregistry.Registry, repo string) {
	tb.Helper()
	out, err := exec.Command(bin, "copy", "--insecure", src.Host+"/bench/app:v1", dst.Host+"/"+repo+":v1").CombinedOutput()
	if err != nil {
		tb.Fatalf("crane copy: %v\n%s", err, out)
	}
}

// TestPushFigures logs the requests and bytes of a first push and of a
// rerun, and the registry-to-registry time of occystrap and crane copy on
// the same image, each into a fresh repository.
func TestPushFigures(t *testing.T) {
	bin := testenv.Crane(t)
	const layers, size = 4, 16 << 20
	src, dst, img := setup(t, layers, size)
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	var b strings.Builder
	step := func(name string, f func()) transport.Stats {
		before := tr.Stats()
		start := time.Now()
		f()
		el := time.Since(start)
		st := tr.Stats()
		d := transport.Stats{Requests: st.Requests - before.Requests, BytesOut: st.BytesOut - before.BytesOut, BytesIn: st.BytesIn - before.BytesIn,
			BlobUploads: st.BlobUploads - before.BlobUploads, BlobsExisting: st.BlobsExisting - before.BlobsExisting}
		fmt.Fprintf(&b, "%-28s %8.3fs requests=%d sent=%d B received=%d B uploads=%d existing=%d\n",
			name, el.Seconds(), d.Requests, d.BytesOut, d.BytesIn, d.BlobUploads, d.BlobsExisting)
		return d
	}
	first := step("occystrap first push", func() { occyCopy(t, tr, src, dst, "occy/app") })
	rerun := step("occystrap rerun", func() { occyCopy(t, tr, src, dst, "occy/app") })
	if first.BlobUploads != layers+1 || rerun.BlobUploads != 0 {
		t.Errorf("uploads: first %d (want %d), rerun %d (want 0)", first.BlobUploads, layers+1, rerun.BlobUploads)
	}
	if rerun.BytesOut > int64(len(img.Manifest)) {
		t.Errorf("rerun sent %d bytes, want at most the manifest's %d", rerun.BytesOut, len(img.Manifest))
	}

	// tar:// (legacy, uncompressed layers) to registry, gzip, with a layer
	// cache: the rerun finds every layer in the cache and HEADs it.
	archive := filepath.Join(t.TempDir(), "img.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	var ls []fixture.Layer
	for i := range layers {
		ls = append(ls, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data%d", i), size, uint64(i))})
	}
	if _, err := fixture.WriteLegacyArchive(f, fixture.Image{Name: "bench/tar", Tag: "v1", Layers: ls}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cache, _ := layercache.Open(filepath.Join(t.TempDir(), "cache.json"))
	tarPush := func() {
		s, err := tarballsrc.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		k := registrysink.New(tr, registrysink.Options{Host: dst.Host, Repo: "tar/app", Tag: "v1", Registry: transport.RegistryOptions{Insecure: true},
			Cache: cache, FiltersHash: layercache.FiltersHash("gzip", nil)})
		if _, err := stage.Run(context.Background(), s, nil, k, stage.Options{Window: 8, Buffer: 4}); err != nil {
			t.Fatal(err)
		}
	}
	tfirst := step("tar->registry first push", tarPush)
	trerun := step("tar->registry rerun (cache)", tarPush)
	if tfirst.BlobUploads != layers+1 || trerun.BlobUploads != 0 {
		t.Errorf("tar uploads: first %d (want %d), rerun %d (want 0)", tfirst.BlobUploads, layers+1, trerun.BlobUploads)
	}

	for i := range 3 {
		step(fmt.Sprintf("occystrap copy #%d", i+1), func() { occyCopy(t, tr, src, dst, fmt.Sprintf("occy%d/app", i)) })
		start := time.Now()
		craneCopy(t, bin, src, dst, fmt.Sprintf("crane%d/app", i))
		fmt.Fprintf(&b, "%-28s %8.3fs\n", fmt.Sprintf("crane copy #%d", i+1), time.Since(start).Seconds())
	}
	t.Logf("image: %d layers x %d MiB (incompressible), registry -> registry over plain HTTP, in-process distribution v3, filesystem storage\n%s", layers, size>>20, b.String())
}

// repoSeq names a fresh destination repository per copy.
var repoSeq atomic.Int64

// BenchmarkRegistryToRegistry copies the same image into a fresh
// repository per iteration, with occystrap and with crane copy.
func BenchmarkRegistryToRegistry(b *testing.B) {
	const layers, size = 4, 16 << 20
	src, dst, _ := setup(b, layers, size)
	b.Run("occystrap", func(b *testing.B) {
		tr, err := transport.New(transport.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		b.SetBytes(layers * size)
		b.ReportAllocs()
		for b.Loop() {
			occyCopy(b, tr, src, dst, fmt.Sprintf("o%d/app", repoSeq.Add(1)))
		}
	})
	b.Run("crane", func(b *testing.B) {
		bin := testenv.Crane(b)
		b.SetBytes(layers * size)
		for b.Loop() {
			craneCopy(b, bin, src, dst, fmt.Sprintf("c%d/app", repoSeq.Add(1)))
		}
	})
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}
