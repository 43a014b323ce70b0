package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage/stagetest"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// dockerURI is a docker:// URI on the test engine's socket.
func dockerURI(eng *testdocker.Engine, ref string) string {
	return "docker://" + ref + "?socket=" + eng.Socket
}

// dirLayers returns the DiffIDs of the layers a dir:// output's manifest
// lists, in order, and its config name.
func dirLayers(t *testing.T, out, manifest string) (string, []digest.Digest) {
	t.Helper()
	var m []struct {
		Config string
		Layers []string
	}
	stagetest.ReadJSON(t, filepath.Join(out, manifest), &m)
	var ds []digest.Digest
	for _, l := range m[0].Layers {
		f, err := os.Open(filepath.Join(out, l))
		if err != nil {
			t.Fatal(err)
		}
		d, err := digest.FromReader(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return m[0].Config, ds
}

// tarLayers returns the sha256 of each */layer.tar member of an archive, in
// archive order.
func tarLayers(t *testing.T, archive string) []digest.Digest {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds []digest.Digest
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ds
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, "/layer.tar") {
			d, err := digest.FromReader(tr)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
	}
}

// TestDockerRoundTrips loads our tar:// input into the engine through
// docker://, reads it back out to dir://, tar:// and a registry, and loads
// that back into the engine: names, Ids and DiffIDs survive every hop.
func TestDockerRoundTrips(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	for _, oci := range []bool{false, true} {
		t.Run(map[bool]string{false: "legacy", true: "oci-gzip"}[oci], func(t *testing.T) {
			src, a := writeArchive(t, oci)
			ref := "occy-e2e/app:v1"
			back := "localhost:5000/occy-e2e/back:v2"
			t.Cleanup(func() { _ = eng.Remove(ctx, ref); _ = eng.Remove(ctx, back) })

			// tar:// -> docker:// tags the destination's full name.
			_, stderr := mustRun(t, "--log-format", "console", "process", "tar://"+src, dockerURI(eng, ref))
			if !summaryRE.MatchString(stderr) {
				t.Errorf("no verified summary line:\n%s", stderr)
			}
			info, err := c.Inspect(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != a.ConfigDigest || !slices.Contains(info.RepoTags, ref) {
				t.Errorf("loaded image: Id %s RepoTags %v; want %s tagged %s", info.ID, info.RepoTags, a.ConfigDigest, ref)
			}

			// docker:// -> dir://
			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, "--log-format", "console", "process", dockerURI(eng, ref), "dir://"+out)
			cfg, layers := dirLayers(t, out, "manifest.json")
			if want := a.ConfigDigest.Encoded() + ".json"; cfg != want {
				t.Errorf("dir config %s, want %s", cfg, want)
			}
			if d := cmp.Diff(a.DiffIDs, layers); d != "" {
				t.Errorf("dir layers (-want +got):\n%s", d)
			}
			var catalog map[string]map[string]string
			stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &catalog)
			if d := cmp.Diff(map[string]map[string]string{"occy-e2e/app": {"v1": "manifest.json"}}, catalog); d != "" {
				t.Errorf("catalog (-want +got):\n%s", d)
			}

			// docker:// -> tar://
			archive := filepath.Join(t.TempDir(), "out.tar")
			mustRun(t, "--log-format", "console", "process", dockerURI(eng, ref), "tar://"+archive)
			if d := cmp.Diff(a.DiffIDs, tarLayers(t, archive)); d != "" {
				t.Errorf("tar layers (-want +got):\n%s", d)
			}

			// docker:// -> registry:// -> docker://
			reg := testregistry.Start(t, testregistry.Options{Plain: true})
			mustRun(t, "--log-format", "console", "--insecure", "process", dockerURI(eng, ref), "registry://"+reg.Host+"/mirror/app:v1")
			mustRun(t, "--log-format", "console", "--insecure", "process", "registry://"+reg.Host+"/mirror/app:v1", dockerURI(eng, back))
			info, err = c.Inspect(ctx, back)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != a.ConfigDigest {
				t.Errorf("after the registry round trip: Id %s, want %s", info.ID, a.ConfigDigest)
			}
			if d := cmp.Diff(a.DiffIDs, info.RootFS.Layers); d != "" {
				t.Errorf("after the registry round trip: layers (-want +got):\n%s", d)
			}
		})
	}
}

func TestDockerErrors(t *testing.T) {
	eng := testdocker.Require(t)
	src, _ := writeArchive(t, false)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"image not found", []string{"process", dockerURI(eng, "occy-e2e/absent:nope"), "dir://" + t.TempDir()}, "Image not found: occy-e2e/absent:nope"},
		{"unknown option", []string{"process", "tar://" + src, "docker://a:b?sock=/x"}, `"sock"`},
		{"no engine", []string{"process", "docker://a:b?socket=" + filepath.Join(t.TempDir(), "none.sock"), "dir://" + t.TempDir()}, "cannot connect to the Docker engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := occystrap(t, append([]string{"--log-format", "console"}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want failure with %q in stderr:\n%s", code, tc.want, stderr)
			}
		})
	}
}

func TestDockerHostEnv(t *testing.T) {
	eng := testdocker.Require(t)
	t.Setenv("DOCKER_HOST", "unix://"+eng.Socket)
	code, _, stderr := occystrap(t, "--log-format", "console", "process", "docker://occy-e2e/absent:x", "dir://"+t.TempDir())
	if code == 0 || !strings.Contains(stderr, "Image not found: occy-e2e/absent:x") {
		t.Errorf("exit %d; the engine named by DOCKER_HOST should answer Image not found:\n%s", code, stderr)
	}
}

// TestQuayToDocker loads every image a quay:// source resolves to into the
// engine, each under its own name below the destination's prefix.
func TestQuayToDocker(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	q, reg := testquay.Start(t, testquay.Options{PageSize: 7}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 6)
	t.Setenv(quayHostEnv, reg.Host)
	code, _, stderr := runCLI("--insecure", "--log-format", "console", "-J", "3", "process",
		"quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01",
		"docker://occy-quay/kolla?socket="+eng.Socket)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "No failed images.") || !strings.Contains(stderr, "verified OK") {
		t.Errorf("no clean, verified summary:\n%s", stderr)
	}
	for _, im := range want {
		ref := "occy-quay/kolla/" + im.Name + ":" + im.Tag
		t.Cleanup(func() { _ = eng.Remove(ctx, ref) })
		info, err := c.Inspect(ctx, ref)
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if info.ID != im.Image.ConfigDigest {
			t.Errorf("%s: Id %s, want %s", ref, info.ID, im.Image.ConfigDigest)
		}
	}
}
