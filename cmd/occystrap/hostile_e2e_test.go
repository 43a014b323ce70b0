package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testenv"
	"github.com/occystrap/occystrap/internal/testregistry"
)

// These tests attack the CLI the way hostile inputs and faults do (issue
// 10): a full disk, an endless body, images that plant symlinks for later
// images, unsafe names, corrupt layers, control characters in names.

// finalNames lists what a consumer would trust in an output directory:
// every manifest, catalog and archive under its final name.
func finalNames(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if n == "catalog.json" || strings.HasPrefix(n, "manifest") && strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".tar") && !strings.HasPrefix(n, ".occystrap-tmp-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestFullDiskLeavesNoFinishedOutput pulls an image whose layers do not fit
// in the temporary directory (a small tmpfs: ENOSPC in the source) into
// dir:// and tar:// outputs on a disk with room. Every run fails, and none
// leaves a manifest, a catalog or a final archive: a sink finishes only when
// the whole run succeeded. The failure and the end of the sink's input race,
// so the runs are repeated.
func TestFullDiskLeavesNoFinishedOutput(t *testing.T) {
	tmp := testenv.Tmpfs(t, 1<<20)
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 41, Layers: 3, LayerSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		base := t.TempDir()
		for _, dst := range []string{"dir://" + filepath.Join(base, "dir"), "dir://" + filepath.Join(base, "expand") + "?expand=true&unique_names=true", "tar://" + filepath.Join(base, "out.tar")} {
			code, _, stderr := occystrap(t, "--log-format", "json", "--insecure", "--temp-dir", tmp, "-j", "3",
				"process", "registry://"+reg.Host+"/fixture/app:v1", dst)
			if code != 1 || !strings.Contains(stderr, "no space left on device") {
				t.Fatalf("run %d into %s: exit %d, want 1 with ENOSPC; stderr:\n%s", i, dst, code, stderr)
			}
		}
		if found := finalNames(t, base); len(found) > 0 {
			t.Fatalf("run %d: a failed run left finished-looking outputs: %v", i, found)
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Fatalf("run %d: temporary files left: %v", i, left)
		}
	}
}

// TestWriteFailureStopsReading serves a layer whose body is as long as its
// manifest declares (256 MiB of zeros, the wrong digest) while the
// temporary directory holds 1 MiB. The write fails with ENOSPC; the run must
// stop reading the body then, not download the rest to check its digest.
func TestWriteFailureStopsReading(t *testing.T) {
	tmp := testenv.Tmpfs(t, 1<<20)
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 42, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	const declared = 256 << 20
	bogus := digest.FromString("endless layer")
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers = []v1.Descriptor{{MediaType: "application/vnd.docker.image.rootfs.diff.tar", Digest: bogus, Size: declared}}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/fixture/endless/manifests/v1"):
				w.Header().Set("Content-Type", m.MediaType)
				_, _ = w.Write(manifest)
			case testregistry.IsBlobGetOf(bogus.String())(r):
				w.Header().Set("Content-Length", strconv.Itoa(declared))
				buf := make([]byte, 64<<10)
				for sent := 0; sent < declared; sent += len(buf) {
					n, err := w.Write(buf)
					served.Add(int64(n))
					if err != nil {
						return
					}
				}
			default:
				h.ServeHTTP(w, r)
			}
		})
	}})
	if err := reg.Push(context.Background(), "fixture/endless", "seed", img); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := occystrap(t, "--log-format", "json", "--insecure", "--temp-dir", tmp, "--retries", "0",
		"process", "registry://"+reg.Host+"/fixture/endless:v1", "dir://"+filepath.Join(t.TempDir(), "out"))
	if code != 1 || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d, want 1 with ENOSPC; stderr:\n%s", code, stderr)
	}
	// 1 MiB was written; socket and read buffers hold a few more.
	if n := served.Load(); n > 32<<20 {
		t.Errorf("the server sent %d MiB of the body after the write failed at 1 MiB", n>>20)
	}
}

