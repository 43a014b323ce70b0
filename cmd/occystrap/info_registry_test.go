package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestInfoAndCheckOnRegistry runs info and check on a registry:// image:
// info reads only the manifest and config, the full check downloads and
// verifies every layer.
func TestInfoAndCheckOnRegistry(t *testing.T) {
	var blobGets int
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken, Wrap: countBlobGets(&blobGets)})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 31, Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	ref := "registry://" + reg.Host + "/fixture/app:v1"

	code, out, stderr := runCLI("--insecure", "-O", "json", "info", ref)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, stderr)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info JSON: %v\n%s", err, out)
	}
	if info["image"] != "fixture/app" || info["tag"] != "v1" || info["layer_count"] != float64(3) ||
		info["config_digest"] != img.ConfigDigest.String() || info["media_type"] != img.MediaType {
		t.Errorf("info: %v", info)
	}
	layers, _ := info["layers"].([]any)
	if len(layers) != 3 {
		t.Fatalf("info layers: %v", info["layers"])
	}
	for i, l := range layers {
		m := l.(map[string]any)
		if m["digest"] != img.Layers[i].Digest.String() || m["diff_id"] != img.Layers[i].DiffID.String() {
			t.Errorf("layer %d: %v", i, m)
		}
	}
	if blobGets != 1 {
		t.Errorf("info fetched %d blobs, want only the config", blobGets)
	}

	code, out, stderr = runCLI("--insecure", "info", ref)
	if code != 0 || !strings.Contains(out, "Image:         fixture/app:v1\n") || !strings.Contains(out, "Layers: 3\n") {
		t.Errorf("info text: exit %d\n%s%s", code, out, stderr)
	}

	blobGets = 0
	code, out, stderr = runCLI("--insecure", "check", ref)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
	}
	for i := range img.Layers {
		if !strings.Contains(out, "[diff-id] Layer "+string(rune('0'+i))+" diff_id verified") {
			t.Errorf("check did not verify layer %d:\n%s", i, out)
		}
	}
	if !strings.Contains(out, "Check complete (full): 0 error(s)") {
		t.Errorf("check text:\n%s", out)
	}
	if blobGets != 4 {
		t.Errorf("full check fetched %d blobs, want config + 3 layers", blobGets)
	}
	blobGets = 0
	if code, out, _ = runCLI("--insecure", "check", "--fast", ref); code != 0 || !strings.Contains(out, "Check complete (fast (metadata only))") || blobGets != 1 {
		t.Errorf("fast check: exit %d, %d blob GETs\n%s", code, blobGets, out)
	}
}

// TestInfoOnQuay lists every image of a Quay organisation: text separated
// by ---, JSON as an array.
func TestInfoOnQuay(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 2}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 4)
	t.Setenv(quayHostEnv, reg.Host)
	src := "quay://openstack.kolla/*:2025.1-debian-bookworm"

	code, out, stderr := runCLI("--insecure", "-O", "json", "info", src)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(list) != len(want) {
		t.Fatalf("%d entries, want %d", len(list), len(want))
	}
	for i, e := range list {
		if e["image"] != want[i].Repo && e["image"] != reg.Host+"/"+want[i].Repo {
			t.Errorf("entry %d is %v, want %s (sorted)", i, e["image"], want[i].Repo)
		}
		if e["config_digest"] != want[i].Image.ConfigDigest.String() {
			t.Errorf("entry %d: config %v, want %s", i, e["config_digest"], want[i].Image.ConfigDigest)
		}
	}
	code, out, _ = runCLI("--insecure", "info", src)
	if code != 0 || strings.Count(out, "\n---\n") != len(want)-1 {
		t.Errorf("text: exit %d, want %d separators:\n%s", code, len(want)-1, out)
	}
}

// countBlobGets wraps a registry to count its blob GETs. The tests that use
// it run one command at a time, so a plain int is enough after each run.
func countBlobGets(n *int) func(http.Handler) http.Handler {
	var mu sync.Mutex
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testregistry.IsBlobGet(r) {
				mu.Lock()
				*n++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
}
