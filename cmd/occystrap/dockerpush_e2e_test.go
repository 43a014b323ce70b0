package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/stage/stagetest"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// TestDockerpushToDir: dockerpush:// -> dir:// holds the same config and
// layers as docker:// -> dir://, layer for layer; the config is
// <Id hex>.json and each layer's folder its DiffID hex; the temporary
// 127.0.0.1:PORT/... name is gone afterwards.
func TestDockerpushToDir(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	src, a := writeArchive(t, false)
	ref := "occy-e2e/pushed:v1"
	t.Cleanup(func() { _ = eng.Remove(ctx, ref) })
	mustRun(t, "--log-format", "console", "process", "tar://"+src, dockerURI(eng, ref))

	viaSave := filepath.Join(t.TempDir(), "save")
	mustRun(t, "--log-format", "console", "process", dockerURI(eng, ref), "dir://"+viaSave)
	viaPush := filepath.Join(t.TempDir(), "push")
	_, stderr := mustRun(t, "--log-format", "console", "process", "dockerpush://"+ref+"?socket="+eng.Socket, "dir://"+viaPush)
	if !summaryRE.MatchString(stderr) {
		t.Errorf("no verified summary line:\n%s", stderr)
	}

	// The same with each inflater: the engine pushes gzip layers.
	testenv.Igzip(t)
	for _, mode := range []string{"go", "isal"} {
		t.Setenv("OCCYSTRAP_INFLATE", mode)
		out := filepath.Join(t.TempDir(), mode)
		mustRun(t, "--log-format", "json", "process", "dockerpush://"+ref+"?socket="+eng.Socket, "dir://"+out)
		if d := cmp.Diff(stagetest.Listing(t, viaPush), stagetest.Listing(t, out)); d != "" {
			t.Errorf("OCCYSTRAP_INFLATE=%s: output differs (-default +%s):\n%s", mode, mode, d)
		}
	}

	saveCfg, saveLayers := dirLayers(t, viaSave, "manifest.json")
	pushCfg, pushLayers := dirLayers(t, viaPush, "manifest.json")
	if d := cmp.Diff(a.DiffIDs, pushLayers); d != "" {
		t.Errorf("dockerpush layers (-want +got):\n%s", d)
	}
	if d := cmp.Diff(saveLayers, pushLayers); d != "" {
		t.Errorf("layers (-docker +dockerpush):\n%s", d)
	}
	if want := a.ConfigDigest.Encoded() + ".json"; pushCfg != want || saveCfg != want {
		t.Errorf("config names: dockerpush %s, docker %s; want %s", pushCfg, saveCfg, want)
	}
	sc, _ := os.ReadFile(filepath.Join(viaSave, saveCfg))
	pc, _ := os.ReadFile(filepath.Join(viaPush, pushCfg))
	if len(pc) == 0 || string(sc) != string(pc) {
		t.Errorf("configs differ:\ndocker:     %s\ndockerpush: %s", sc, pc)
	}
	var m []struct{ Layers []string }
	stagetest.ReadJSON(t, filepath.Join(viaPush, "manifest.json"), &m)
	var want []string
	for _, d := range a.DiffIDs {
		want = append(want, d.Encoded()+"/layer.tar")
	}
	if d := cmp.Diff(want, m[0].Layers); d != "" {
		t.Errorf("manifest layers (-want +got):\n%s", d)
	}
	info, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{ref}, info.RepoTags); d != "" {
		t.Errorf("RepoTags after dockerpush (-want +got):\n%s", d)
	}
}

func TestDockerpushErrors(t *testing.T) {
	eng := testdocker.Require(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"image not found", []string{"process", "dockerpush://occy-e2e/absent:nope?socket=" + eng.Socket, "dir://" + t.TempDir()}, "Image not found: occy-e2e/absent:nope"},
		{"unknown option", []string{"process", "dockerpush://a:b?sock=/x", "dir://" + t.TempDir()}, `"sock"`},
		{"no engine", []string{"process", "dockerpush://a:b?socket=" + filepath.Join(t.TempDir(), "none.sock"), "dir://" + t.TempDir()}, "cannot connect to the Docker engine"},
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

// With --layer-cache FILE, dockerpush:// writes FILE.digests in the
// original's format (the engine's compressed blob for each layer, mapped to
// its DiffID); a second run into the same dir:// then tells the engine the
// registry has those blobs, and the engine uploads none of them (only the
// config).
func TestDockerpushLayerDigests(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	src, a := writeArchive(t, false)
	ref := "occy-e2e/digests:v1"
	t.Cleanup(func() { _ = eng.Remove(ctx, ref) })
	mustRun(t, "--log-format", "json", "process", "tar://"+src, dockerURI(eng, ref))

	cache := filepath.Join(t.TempDir(), "cache", "layers.json")
	out := filepath.Join(t.TempDir(), "out")
	uploads := func(stderr string) int {
		n := 0
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, `"method":"PUT"`) && strings.Contains(line, "/blobs/uploads/") {
				n++
			}
		}
		return n
	}
	args := []string{"--log-format", "json", "--verbose", "--layer-cache", cache, "process", "dockerpush://" + ref + "?socket=" + eng.Socket, "dir://" + out}
	// In a process of its own: the debug lines of concurrent requests go
	// to a real stderr, which takes concurrent writes (a test's buffer
	// does not).
	_, stderr := mustChild(t, child{}, args...)
	// The engine dedups the image's repeated layers; every distinct one and
	// the config are uploaded.
	distinct := map[string]bool{}
	for _, d := range a.DiffIDs {
		distinct[d.Encoded()] = true
	}
	if got := uploads(stderr); got != len(distinct)+1 {
		t.Errorf("first run: %d blob uploads, want %d layers and the config", got, len(distinct))
	}
	var f struct {
		Version  int               `json:"version"`
		Mappings map[string]string `json:"mappings"`
	}
	stagetest.ReadJSON(t, cache+".digests", &f)
	got := map[string]bool{}
	for c, d := range f.Mappings {
		if len(c) != 64 || c == d {
			t.Errorf("mapping %s -> %s: not a compressed blob's hex", c, d)
		}
		got[d] = true
	}
	if f.Version != 1 || !cmp.Equal(distinct, got) {
		t.Errorf(".digests version %d maps to DiffIDs %v, want %v", f.Version, got, distinct)
	}

	_, stderr = mustChild(t, child{}, args...)
	if got := uploads(stderr); got != 1 {
		t.Errorf("second run: %d blob uploads, want only the config's:\n%s", got, stderr)
	}
	if !summaryRE.MatchString(stderr) {
		t.Errorf("second run: no verified summary line:\n%s", stderr)
	}
}
