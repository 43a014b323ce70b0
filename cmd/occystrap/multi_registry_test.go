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
	"github.com/occystrap/occystrap/transport"
)

// TestQuayToRegistry mirrors a Quay organisation into another registry:
// every image keeps its own name under the destination prefix, its manifest
// digest is the source's (compressed passthrough), and a blob several images
// share is uploaded once and mounted into the other repositories.
func TestQuayToRegistry(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 7}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 8)
	t.Setenv(quayHostEnv, reg.Host)
	var mu sync.Mutex
	uploads := map[string]int{} // digest -> completed uploads (PUT ?digest=)
	mounts := 0
	dst := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			switch {
			case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
				uploads[r.URL.Query().Get("digest")]++
			case r.Method == http.MethodPost && r.URL.Query().Get("mount") != "":
				mounts++
			}
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}})

	code, _, stderr := runCLI("--insecure", "--log-format", "console", "-J", "4", "process",
		"quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01",
		"registry://"+dst.Host+"/mirror")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for d, n := range uploads {
		if n != 1 {
			t.Errorf("blob %s uploaded %d times, want once", d, n)
		}
	}
	// Every blob of every image is either uploaded once or mounted.
	unique := map[string]bool{}
	total := 0
	for _, im := range want {
		unique[im.Image.ConfigDigest.String()] = true
		total++
		for _, l := range im.Image.Layers {
			unique[l.Digest.String()] = true
			total++
		}
	}
	if len(uploads) != len(unique) {
		t.Errorf("%d blobs uploaded, want the %d unique ones", len(uploads), len(unique))
	}
	if mounts == 0 || mounts > total-len(unique) {
		t.Errorf("%d mounts; want some, at most %d (blob references beyond the first)", mounts, total-len(unique))
	}
	assertMirrored(t, dst.Host, "mirror/", want)
}

// assertMirrored checks that every image of want is at host under prefix
// with its source digest, and its manifest is JSON.
func assertMirrored(t *testing.T, host, prefix string, want []testquay.SeededImage) {
	t.Helper()
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range want {
		m, err := tr.Registry(host, transport.RegistryOptions{Insecure: true}).GetManifest(context.Background(), prefix+im.Name, im.Tag, []string{im.Image.MediaType})
		if err != nil {
			t.Errorf("%s: %v", im.Repo, err)
			continue
		}
		if m.Digest != im.Image.Digest {
			t.Errorf("%s: digest %s at the destination, %s at the source", im.Repo, m.Digest, im.Image.Digest)
		}
		var parsed map[string]any
		if err := json.Unmarshal(m.Body, &parsed); err != nil {
			t.Errorf("%s: manifest: %v", im.Repo, err)
		}
	}
}
