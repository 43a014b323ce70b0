package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestDockerHubDefaults runs the binary on docker-style short names. Docker
// Hub is stood in for by a registry behind an HTTP proxy (HTTP_PROXY with
// --insecure, so the proxy sees every URL): the requests must go to
// registry-1.docker.io for library/busybox, with the credentials Docker
// keeps for Docker Hub (a credential helper asked for its v1 index URL, as
// docker asks).
func TestDockerHubDefaults(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthBasic, Username: "hubuser", Password: "hubpass"})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 3, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"latest", "1.36"} {
		if err := reg.Push(context.Background(), "library/busybox", tag, img); err != nil {
			t.Fatal(err)
		}
	}
	target, _ := url.Parse(reg.URL)
	var mu sync.Mutex
	var seen []string
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Host+r.URL.Path)
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	bin := t.TempDir()
	helper := "#!/bin/sh\nread server\nif [ \"$server\" = https://index.docker.io/v1/ ]; then echo '{\"Username\":\"hubuser\",\"Secret\":\"hubpass\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-hubtest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credsStore":"hubtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY=", "no_proxy=",
		"DOCKER_CONFIG=" + cfg, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}

	for _, tc := range []struct{ uri, manifest string }{
		{"registry://busybox", "registry-1.docker.io/v2/library/busybox/manifests/latest"},
		{"registry://busybox:1.36", "registry-1.docker.io/v2/library/busybox/manifests/1.36"},
		{"registry://library/busybox", "registry-1.docker.io/v2/library/busybox/manifests/latest"},
		{"registry://docker.io/busybox:latest", "registry-1.docker.io/v2/library/busybox/manifests/latest"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			out, errs := binMust(t, env, "--insecure", "--log-format", "json", "info", tc.uri)
			if !imageLine("library/busybox:" + tc.manifest[strings.LastIndex(tc.manifest, "/")+1:]).MatchString(out) {
				t.Errorf("stdout:\n%s\nstderr:\n%s", out, errs)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(seen, tc.manifest) {
				t.Errorf("requests %q, want one for %s", seen, tc.manifest)
			}
		})
	}
}

// TestBareReferenceError: a docker-style reference where a URI is expected
// gets an error that spells out the registry:// URI.
func TestBareReferenceError(t *testing.T) {
	archive, _ := writeArchive(t, false)
	for _, args := range [][]string{
		{"info", "127.0.0.1:5000/demo/app:v1"},
		{"process", "127.0.0.1:5000/demo/app:v1", "dir://" + t.TempDir()},
		{"process", "tar://" + archive, "127.0.0.1:5000/demo/app:v1"},
		{"search", "127.0.0.1:5000/demo/app:v1", "*"},
	} {
		code, _, errs := binRun(t, nil, args...)
		// A reference where a URI goes is a usage error (exit 2).
		if code != 2 || !strings.Contains(errs, "write registry://127.0.0.1:5000/demo/app:v1") {
			t.Errorf("%q: exit %d, want 2 and a registry:// hint\n%s", args, code, errs)
		}
	}
}
