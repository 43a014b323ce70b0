package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testdocker"
	dockersrc "github.com/occystrap/occystrap/sources/docker"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect is testdocker.Collect for a run that must succeed.
func collect(t *testing.T, src *dockersrc.Source) []testdocker.Got {
	t.Helper()
	items, err := testdocker.Collect(t, src)
	if err != nil {
		t.Fatalf("Emit: %v", err)
	}
	return items
}

// want is what a source must emit for a: the config, then each layer in
// order with its DiffID, named as names gives.
func want(a fixture.Built, config string, names []string) []testdocker.Got {
	w := []testdocker.Got{{Kind: stage.KindConfig, Seq: -1, Name: config, Sum: a.ConfigDigest}}
	for i, d := range a.DiffIDs {
		w = append(w, testdocker.Got{Kind: stage.KindLayer, Seq: i, Name: names[i], DiffID: d, Sum: d})
	}
	return w
}

// savedNames returns the config path and layer names of the engine's own
// docker save of ref, from its manifest.json.
func savedNames(t *testing.T, c *dockerclient.Client, ref string) (string, []string) {
	t.Helper()
	rc, err := c.Save(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(t.TempDir(), "saved.tar")
	f, _ := os.Create(path)
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m := readManifest(t, path)
	var names []string
	for _, l := range m.Layers {
		names = append(names, strings.TrimSuffix(l, "/layer.tar"))
	}
	return m.Config, names
}

func TestEmitFromEngine(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	ctx := context.Background()
	tests := []struct {
		name string
		img  fixture.Image
	}{
		{"five layers", testdocker.Image("occy-src/five", "a", "b", "c", "d", "e")},
		// A repeated layer cannot be placed by its DiffID: it comes from
		// the finished spool, named as manifest.json says.
		{"repeated layer", testdocker.Image("occy-src/repeat", "a", "b", "a", "c")},
		{"one layer", testdocker.Image("occy-src/one", "only")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := eng.Seed(t, tc.img)
			ref := tc.img.Name + ":v1"
			config, names := savedNames(t, c, ref)

			tmp := t.TempDir()
			src, err := dockersrc.Open(ctx, c, ref, dockersrc.Options{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(stage.Image{Name: tc.img.Name, Tag: "v1"}, src.Image()); d != "" {
				t.Errorf("Image (-want +got):\n%s", d)
			}
			if src.ID() != a.ConfigDigest {
				t.Errorf("ID %s, want %s", src.ID(), a.ConfigDigest)
			}
			items := collect(t, src)
			if d := cmp.Diff(want(a.Built, config, names), items); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("spool left in the temp dir: %v", left)
			}
		})
	}
}

func TestOpenNotFound(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	_, err := dockersrc.Open(context.Background(), c, "occy-src/absent:nope", dockersrc.Options{})
	if !errors.Is(err, dockersrc.ErrImageNotFound) || err.Error() != "Image not found: occy-src/absent:nope" {
		t.Errorf("err = %v, want Image not found: occy-src/absent:nope", err)
	}
}

// fakeEngine serves an image in the OCI layout of Docker 25+ `docker save`,
// which the engine in CI (20.10) does not write: the inspect and the save
// answers only, shaped as the real API's, on a unix socket.
func fakeEngine(t *testing.T, archive []byte, id digest.Digest, diffIDs []digest.Digest) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /images/occy/oci:v1/json", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"Id": id, "RepoTags": []string{"occy/oci:v1"},
			"RootFS": map[string]any{"Type": "layers", "Layers": diffIDs}})
	})
	mux.HandleFunc("GET /images/occy/oci:v1/get", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		_, _ = w.Write(archive)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"No such image: `+r.URL.Path+`"}`)
	})
	srv := &http.Server{Handler: mux}
	p := pool.New()
	p.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() { _ = srv.Close(); p.Wait() })
	return sock
}

func TestEmitOCILayout(t *testing.T) {
	for _, comp := range []fixture.Compression{fixture.Uncompressed, fixture.Gzip, fixture.Zstd} {
		t.Run(comp.String(), func(t *testing.T) {
			var buf bytes.Buffer
			a, err := fixture.WriteOCIArchive(&buf, testdocker.Image("occy/oci", "a", "b", "a", "c"), comp)
			if err != nil {
				t.Fatal(err)
			}
			c := dockerclient.New(fakeEngine(t, buf.Bytes(), a.ConfigDigest, a.DiffIDs))
			t.Cleanup(c.CloseIdle)
			src, err := dockersrc.Open(context.Background(), c, "occy/oci:v1", dockersrc.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if d := cmp.Diff(want(a.Built, a.ConfigPath, a.LayerNames), collect(t, src)); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
		})
	}
}

type manifestEntry struct {
	Config string
	Layers []string
}

func readManifest(t *testing.T, archive string) manifestEntry {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in %s: %v", archive, err)
		}
		if h.Name == "manifest.json" {
			b, _ = io.ReadAll(tr)
			break
		}
	}
	var m []manifestEntry
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
		t.Fatalf("manifest.json: %v %s", err, b)
	}
	return m[0]
}
