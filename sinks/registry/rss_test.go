package registry_test

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// The peak-RSS test pushes one large layer of random (incompressible) data
// from a child process (this test binary, re-executed), so that the figure
// is the pushing side's alone; the registry runs in the parent, storing on
// disk. OCCYSTRAP_RSS_MB sets the layer size (default 256 MiB).
const (
	rssChildEnv  = "OCCYSTRAP_RSS_CHILD"
	rssLimitMiB  = 100 // the assertion: far below the layer size
	rssGoMemLim  = "64MiB"
	rssDefaultMB = 256
)

func TestPeakRSSBoundedForLargeLayer(t *testing.T) {
	mb := rssDefaultMB
	if v := os.Getenv("OCCYSTRAP_RSS_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	r := testregistry.Start(t, testregistry.Options{Plain: true, RootDirectory: filepath.Join(dir, "store")})
	layer := filepath.Join(dir, "layer.tar")
	diffID := writeRandomLayer(t, layer, int64(mb)<<20)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rssChildEnv+"=1", "GOMEMLIMIT="+rssGoMemLim,
		"RSS_HOST="+r.Host, "RSS_LAYER="+layer, "RSS_DIFFID="+diffID.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child push: %v\n%s", err, out)
	}
	var hwm int64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM_KiB="); ok {
			hwm, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if hwm == 0 {
		t.Fatalf("child printed no VmHWM:\n%s", out)
	}
	t.Logf("pushed a %d MiB layer (gzip, 4 workers, streamed 256 MiB chunks): peak RSS %.1f MiB\n%s", mb, float64(hwm)/1024, out)
	if hwm/1024 > rssLimitMiB*rssFactor {
		t.Errorf("peak RSS %d MiB for a %d MiB layer, want below %d MiB", hwm/1024, mb, rssLimitMiB*rssFactor)
	}
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	pull(t, tr, r, true, "big/app", "v1")
}

// writeRandomLayer streams a tar of one random file of size bytes into
// path and returns its DiffID.
func writeRandomLayer(t *testing.T, path string, size int64) digest.Digest {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.SHA256.Digester()
	bw := bufio.NewWriterSize(io.MultiWriter(f, d.Hash()), 1<<20)
	tw := tar.NewWriter(bw)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(tw, rng, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return d.Digest()
}

// bigSource emits a config and one layer read from a file.
type bigSource struct {
	path   string
	diffID digest.Digest
}

func (s bigSource) Properties() stage.SourceProperties { return stage.SourceProperties{} }

func (s bigSource) Emit(ctx context.Context, out chan<- stage.Item) error {
	cfg, _ := json.Marshal(v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{s.diffID}}})
	if err := stage.Send(ctx, out, stage.Item{Seq: -1, Kind: stage.KindConfig, Name: "c.json", Size: -1, Data: cfg}); err != nil {
		return err
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	return stage.Send(ctx, out, stage.Item{Seq: 0, Kind: stage.KindLayer, Name: s.diffID.Encoded(), DiffID: s.diffID, Size: st.Size(),
		Body: &stage.FileBody{Path: s.path}})
}

// rssChild pushes the layer and prints its peak RSS.
func rssChild() int {
	tr, err := transport.New(transport.Options{})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer tr.Close()
	k := registrysink.New(tr, registrysink.Options{Host: os.Getenv("RSS_HOST"), Repo: "big/app", Tag: "v1",
		Registry: transport.RegistryOptions{Insecure: true}})
	src := bigSource{path: os.Getenv("RSS_LAYER"), diffID: digest.Digest(os.Getenv("RSS_DIFFID"))}
	if _, err := stage.Run(context.Background(), src, nil, k, stage.Options{}); err != nil {
		fmt.Println("push:", err)
		return 1
	}
	st := tr.Stats()
	fmt.Printf("requests=%d bytes_out=%d uploads=%d\n", st.Requests, st.BytesOut, st.BlobUploads)
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("VmHWM_KiB=%s\n", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0
}
