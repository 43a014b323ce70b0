package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// withBlob is img with layer i's blob replaced (its manifest rewritten).
func withBlob(t *testing.T, img testregistry.Image, i int, blob []byte) testregistry.Image {
	t.Helper()
	img.Layers = append([]testregistry.Layer(nil), img.Layers...)
	img.Layers[i].Blob = blob
	img.Layers[i].Digest = digest.FromBytes(blob)
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers[i].Digest, m.Layers[i].Size = img.Layers[i].Digest, int64(len(blob))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.Manifest, img.Digest = b, digest.FromBytes(b)
	return img
}

// gzipMembers compresses each part as its own gzip member, concatenated.
func gzipMembers(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		zw := gzip.NewWriter(&buf)
		zw.Write(p)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestInflateModesSameOutput runs the same pulls with OCCYSTRAP_INFLATE=go
// and =isal (the igzip subprocess, or libisal in process in a build with
// the isal tag): registry:// (a normal image, and one whose layer is a
// multi-member gzip) and a gzip OCI tar:// into dir:// give the same trees
// byte for byte; a truncated and a corrupt gzip layer fail in both, leaving
// no manifest; and the debug line names the inflater that ran.
func TestInflateModesSameOutput(t *testing.T) {
	testenv.Igzip(t)
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	ctx := context.Background()
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 15, Layers: 3, LayerSize: 300 << 10})
	if err != nil {
		t.Fatal(err)
	}
	l0 := img.Layers[0].Tar
	multi := withBlob(t, img, 0, gzipMembers(t, l0[:1000], l0[1000:], nil))
	good := img.Layers[1].Blob
	truncated := withBlob(t, img, 1, good[:len(good)-100])
	corrupt := bytes.Clone(good)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0xa5
	}
	corrupted := withBlob(t, img, 1, corrupt)
	for name, im := range map[string]testregistry.Image{"ok": img, "multi": multi, "truncated": truncated, "corrupt": corrupted} {
		if err := reg.Push(ctx, "inflate/"+name, "v1", im); err != nil {
			t.Fatal(err)
		}
	}
	archive, _ := writeArchive(t, true)

	trees := map[string][]string{}
	for _, mode := range []string{"go", "isal"} {
		t.Setenv("OCCYSTRAP_INFLATE", mode)
		for _, src := range []string{"registry://" + reg.Host + "/inflate/ok:v1", "registry://" + reg.Host + "/inflate/multi:v1", "tar://" + archive} {
			out := filepath.Join(t.TempDir(), "out")
			_, stderr := mustRun(t, "--insecure", "--verbose", "--log-format", "json", "process", src, "dir://"+out)
			name := mode
			if mode == "isal" && inflate.Linked {
				name = inflate.NameISALCgo
			}
			if !strings.Contains(stderr, `"inflater":"`+name+`"`) {
				t.Errorf("%s %s: no debug line naming the inflater:\n%s", mode, src, stderr)
			}
			listing := stagetest.Listing(t, out)
			if prev, ok := trees[src]; ok {
				if d := cmp.Diff(prev, listing); d != "" {
					t.Errorf("%s: go and isal outputs differ (-go +isal):\n%s", src, d)
				}
			}
			trees[src] = listing
		}
		for bad, im := range map[string]testregistry.Image{"truncated": truncated, "corrupt": corrupted} {
			out := filepath.Join(t.TempDir(), "out")
			code, _, stderr := occystrap(t, "--insecure", "process", "registry://"+reg.Host+"/inflate/"+bad+":v1", "dir://"+out)
			if code == 0 {
				t.Errorf("%s: %s layer accepted", mode, bad)
			}
			if !strings.Contains(stderr, "Error: layer "+im.Layers[1].Digest.String()) {
				t.Errorf("%s: %s: error does not name the layer:\n%s", mode, bad, stderr)
			}
			if m, _ := filepath.Glob(filepath.Join(out, "manifest.json")); len(m) != 0 {
				t.Errorf("%s: %s: manifest written", mode, bad)
			}
		}
	}
	// The multi-member blob decompresses to the original layer.
	found := false
	for _, l := range trees["registry://"+reg.Host+"/inflate/multi:v1"] {
		if strings.HasPrefix(l, multi.Layers[0].Digest.Encoded()+"/layer.tar ") {
			found = strings.Contains(l, img.Layers[0].DiffID.Encoded())
		}
	}
	if !found {
		t.Errorf("multi-member layer's layer.tar is not the original tar (DiffID %s): %v", img.Layers[0].DiffID, trees["registry://"+reg.Host+"/inflate/multi:v1"])
	}
}

// Without igzip on PATH, isal fails and auto is Go, as before; a build
// with the isal tag needs no igzip: both run libisal in process.
func TestInflateIsalUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("OCCYSTRAP_INFLATE", "isal")
	archive, _ := writeArchive(t, true)
	code, _, stderr := occystrap(t, "--verbose", "--log-format", "json", "process", "tar://"+archive, "dir://"+filepath.Join(t.TempDir(), "out"))
	switch {
	case inflate.Linked && (code != 0 || !strings.Contains(stderr, `"inflater":"isal-cgo"`)):
		t.Fatalf("isal with libisal linked: exit %d, stderr:\n%s", code, stderr)
	case !inflate.Linked && (code == 0 || !strings.Contains(stderr, "igzip is not available")):
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	t.Setenv("OCCYSTRAP_INFLATE", "auto")
	_, stderr = mustRun(t, "--verbose", "--log-format", "json", "process", "tar://"+archive, "dir://"+filepath.Join(t.TempDir(), "out"))
	want := `"inflater":"go"`
	if inflate.Linked {
		want = `"inflater":"isal-cgo"`
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("auto without igzip did not choose %s:\n%s", want, stderr)
	}
}
