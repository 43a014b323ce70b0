package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/transport"
)

// twoPlatforms pushes a two-platform index (linux/amd64 and linux/arm64/v8)
// to multi/app:v1, plus a third entry naming the amd64 image again as
// linux/amd64/v2 (so the copies share every blob of one child).
func twoPlatforms(t *testing.T, reg *testregistry.Registry, oci bool) (amd, arm testregistry.Image, idx digest.Digest) {
	t.Helper()
	var err error
	if amd, err = testregistry.NewImage(testregistry.ImageOptions{Seed: 40, Layers: 2, LayerSize: 1536, OCI: oci}); err != nil {
		t.Fatal(err)
	}
	if arm, err = testregistry.NewImage(testregistry.ImageOptions{Seed: 41, Layers: 2, LayerSize: 1536, OCI: oci, Arch: "arm64", Variant: "v8"}); err != nil {
		t.Fatal(err)
	}
	amd2 := amd
	amd2.Platform.Variant = "v2"
	if idx, err = reg.PushIndex(context.Background(), "multi/app", "v1", oci, amd, arm, amd2); err != nil {
		t.Fatal(err)
	}
	return amd, arm, idx
}

func craneDigest(t *testing.T, craneBin, ref string) string {
	t.Helper()
	out, err := exec.Command(craneBin, "digest", "--insecure", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("crane digest %s: %v\n%s", ref, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestAllPlatformsCopy(t *testing.T) {
	craneBin := testenv.Crane(t)
	for _, oci := range []bool{false, true} {
		name := "docker-list"
		if oci {
			name = "oci-index"
		}
		t.Run(name, func(t *testing.T) {
			src := testregistry.Start(t, testregistry.Options{Plain: true})
			amd, arm, idx := twoPlatforms(t, src, oci)
			var mu sync.Mutex
			uploads := map[string]int{}
			dst := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
						mu.Lock()
						uploads[r.URL.Query().Get("digest")]++
						mu.Unlock()
					}
					h.ServeHTTP(w, r)
				})
			}})
			for _, tc := range []struct{ name, flag, query string }{
				{"flag", "--all-platforms", ""},
				{"option", "", "?all_platforms=true"},
			} {
				args := []string{"--insecure", "--log-format", "console", "-J", "3"}
				if tc.flag != "" {
					args = append(args, tc.flag)
				}
				to := dst.Host + "/mirror/" + tc.name + ":v1"
				args = append(args, "process", "registry://"+src.Host+"/multi/app:v1"+tc.query, "registry://"+to)
				mu.Lock()
				clear(uploads)
				mu.Unlock()
				code, _, stderr := runCLI(args...)
				if code != 0 {
					t.Fatalf("%s: exit %d\n%s", tc.name, code, stderr)
				}
				// Each blob went up once, although the amd64 image is
				// listed twice and its copies ran in parallel.
				want := 0
				for _, img := range []testregistry.Image{amd, arm} {
					want += 1 + len(img.Layers)
				}
				mu.Lock()
				if len(uploads) != want {
					t.Errorf("%s: %d distinct blobs uploaded, want %d", tc.name, len(uploads), want)
				}
				for d, n := range uploads {
					if n != 1 {
						t.Errorf("%s: blob %s uploaded %d times", tc.name, d, n)
					}
				}
				mu.Unlock()
				if !strings.Contains(stderr, "verified OK") {
					t.Errorf("%s: no verified OK:\n%s", tc.name, stderr)
				}
				if got, want := craneDigest(t, craneBin, to), craneDigest(t, craneBin, src.Host+"/multi/app:v1"); got != want || got != idx.String() {
					t.Errorf("%s: crane digest %s at the destination, %s at the source (pushed %s)", tc.name, got, want, idx)
				}
				for _, c := range []struct {
					platform string
					img      testregistry.Image
				}{{"linux/amd64", amd}, {"linux/arm64/v8", arm}, {"linux/amd64/v2", amd}} {
					ref := dst.Host + "/mirror/" + tc.name + "@" + c.img.Digest.String()
					if got := craneDigest(t, craneBin, ref); got != c.img.Digest.String() {
						t.Errorf("%s: child %s: digest %s", tc.name, c.platform, got)
					}
					out, err := exec.Command(craneBin, "validate", "--insecure", "--remote", ref).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "PASS") {
						t.Errorf("%s: crane validate --remote %s: %v\n%s", tc.name, ref, err, out)
					}
				}
			}
		})
	}
}

func TestAllPlatformsRefused(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	twoPlatforms(t, src, true)
	archive, _ := writeArchive(t, false)
	d := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--all-platforms", "process", "registry://" + src.Host + "/multi/app:v1", "dir://" + d + "/out"}, "dir:// output: --all-platforms copies a whole manifest list and needs a registry:// destination"},
		{[]string{"process", "registry://" + src.Host + "/multi/app:v1?all_platforms=true", "tar://" + d + "/out.tar"}, "tar:// output: --all-platforms copies a whole manifest list"},
		{[]string{"--all-platforms", "process", "tar://" + archive, "registry://" + src.Host + "/x:v1"}, "--all-platforms: tar:// input holds one image"},
		{[]string{"--all-platforms", "process", "registry://" + src.Host + "/multi/app:v1", "registry://" + src.Host + "/x:v1", "-f", "normalize-timestamps"}, "it takes no filters"},
	} {
		code, _, stderr := runCLI(append([]string{"--insecure"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if entries, _ := os.ReadDir(d); len(entries) != 0 {
		t.Errorf("a refused run wrote %d entries into %s", len(entries), d)
	}
}

// TestPlatformChoice: --platform linux/arm64, --architecture arm64 and
// OCCYSTRAP_PLATFORM all choose the linux/arm64/v8 child; --platform wins
// over --architecture; s390x fails naming what the index has.
func TestPlatformChoice(t *testing.T) {
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	amd, arm, _ := twoPlatforms(t, src, true)
	from := "registry://" + src.Host + "/multi/app:v1"
	configOf := func(t *testing.T, env, query string, args ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		if env != "" {
			t.Setenv("OCCYSTRAP_PLATFORM", env)
		}
		code, _, stderr := runCLI(append(append([]string{"--insecure", "--log-format", "console"}, args...), "process", from+query, "dir://"+out)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m []struct{ Config string }
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
			t.Fatalf("manifest.json: %v %s", err, b)
		}
		return m[0].Config
	}
	armCfg, amdCfg := arm.ConfigDigest.Encoded()+".json", amd.ConfigDigest.Encoded()+".json"
	for _, tc := range []struct {
		name string
		env  string
		q    string
		args []string
		want string
	}{
		{"default", "", "", nil, amdCfg},
		{"platform", "", "", []string{"--platform", "linux/arm64"}, armCfg},
		{"architecture", "", "", []string{"--architecture", "arm64"}, armCfg},
		{"platform-variant", "", "", []string{"--platform", "linux/arm64/v8"}, armCfg},
		{"platform-wins", "", "", []string{"--architecture", "amd64", "--platform", "linux/arm64"}, armCfg},
		{"env", "linux/arm64", "", nil, armCfg},
		{"uri-arch", "", "?arch=arm64", nil, armCfg},
		{"uri-platform", "", "?platform=linux/arm64", []string{"--platform", "linux/amd64"}, armCfg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := configOf(t, tc.env, tc.q, tc.args...); got != tc.want {
				t.Errorf("config %s, want %s", got, tc.want)
			}
		})
	}

	code, _, stderr := runCLI("--insecure", "--platform", "linux/s390x", "process", from, "dir://"+t.TempDir())
	want := "Could not find a matching manifest for this os / architecture / variant: asked for linux/s390x; the index has linux/amd64, linux/arm64/v8, linux/amd64/v2"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("s390x: exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
	code, _, stderr = runCLI("--platform", "linux", "info", from)
	if code != 2 || !strings.Contains(stderr, "--platform: platform \"linux\": expected os/arch[/variant]") {
		t.Errorf("bad --platform: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestInfoOnIndex: info shows the index's digest, media type and
// platforms, then the chosen child, in text and JSON.
func TestInfoOnIndex(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	_, arm, idx := twoPlatforms(t, src, true)
	from := "registry://" + src.Host + "/multi/app:v1"
	code, stdout, stderr := runCLI("--insecure", "--platform", "linux/arm64", "info", from)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantText := "Index:         " + idx.String() + "\n" +
		"Index type:    application/vnd.oci.image.index.v1+json\n" +
		"Platforms:     3\n"
	if !strings.HasPrefix(stdout, wantText) {
		t.Errorf("text output starts:\n%s\nwant:\n%s", stdout, wantText)
	}
	for _, s := range []string{"  linux/arm64/v8   " + arm.Digest.String(), "Platform:      linux/arm64/v8", "Config digest: " + arm.ConfigDigest.String()} {
		if !strings.Contains(stdout, s) {
			t.Errorf("text output lacks %q:\n%s", s, stdout)
		}
	}
	if strings.Index(stdout, "Index:") > strings.Index(stdout, "Image:") {
		t.Errorf("the index is not printed before the image:\n%s", stdout)
	}
	code, stdout, stderr = runCLI("--insecure", "--platform", "linux/arm64", "-O", "json", "info", from)
	if code != 0 {
		t.Fatalf("json: exit %d\n%s", code, stderr)
	}
	var got struct {
		ConfigDigest string `json:"config_digest"`
		Architecture string
		Index        struct {
			Digest    string `json:"digest"`
			MediaType string `json:"media_type"`
			Manifests []struct {
				Platform *string
				Digest   string
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if got.Index.Digest != idx.String() || got.Index.MediaType != "application/vnd.oci.image.index.v1+json" || len(got.Index.Manifests) != 3 ||
		got.Index.Manifests[1].Platform == nil || *got.Index.Manifests[1].Platform != "linux/arm64/v8" || got.ConfigDigest != arm.ConfigDigest.String() || got.Architecture != "arm64" {
		t.Errorf("json output:\n%s", stdout)
	}
}

// TestQuayAllPlatforms: a quay:// bulk run with --all-platforms copies each
// repository's whole list, digests kept.
func TestQuayAllPlatforms(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true})
	t.Setenv(quayHostEnv, reg.Host)
	want := map[string]digest.Digest{}
	for i, name := range []string{"svc-a", "svc-b"} {
		var imgs []testregistry.Image
		for j, p := range [][2]string{{"amd64", ""}, {"arm64", "v8"}} {
			img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: uint64(60 + 2*i + j), Layers: 2, LayerSize: 1024, OCI: true, Arch: p[0], Variant: p[1]})
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
		d, err := reg.PushIndex(context.Background(), "org/"+name, "latest", true, imgs...)
		if err != nil {
			t.Fatal(err)
		}
		q.AddTag("org", name, testquay.Tag{Name: "latest", ManifestDigest: d, StartTS: time.Now(), IsManifestList: true})
		want[name] = d
	}
	dst := testregistry.Start(t, testregistry.Options{Plain: true})
	code, _, stderr := runCLI("--insecure", "--log-format", "console", "--all-platforms", "process", "quay://org", "registry://"+dst.Host+"/mirror")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "No failed images.") || !strings.Contains(stderr, "verified OK") {
		t.Errorf("stderr:\n%s", stderr)
	}
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range want {
		m, err := tr.Registry(dst.Host, transport.RegistryOptions{Insecure: true}).GetManifest(context.Background(), "mirror/"+name, "latest", registrysrc.Accepted())
		if err != nil || m.Digest != d {
			t.Errorf("%s: %v, digest %s at the destination, want %s", name, err, m.Digest, d)
		}
	}
}

// TestAllPlatformsWithAttestation: a list as buildx pushes it, with an
// attestation manifest (platform unknown/unknown, an in-toto layer) beside
// the image, is copied whole, digest kept.
func TestAllPlatformsWithAttestation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 70, Layers: 1, LayerSize: 1024, OCI: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(ctx, "att/app", "", img); err != nil {
		t.Fatal(err)
	}
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}`)
	cfg := []byte(`{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(statement).String() + `"]}}`)
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		digest.FromBytes(cfg).String() + `","size":` + itoa(len(cfg)) + `},"layers":[{"mediaType":"application/vnd.in-toto+json","digest":"` +
		digest.FromBytes(statement).String() + `","size":` + itoa(len(statement)) + `,"annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}]}`)
	for _, b := range [][]byte{statement, cfg} {
		if err := src.PushBlob(ctx, "att/app", b); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.PushManifest(ctx, "att/app", digest.FromBytes(man).String(), "application/vnd.oci.image.manifest.v1+json", man); err != nil {
		t.Fatal(err)
	}
	idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + img.Digest.String() + `","size":` + itoa(len(img.Manifest)) + `,"platform":{"architecture":"amd64","os":"linux"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromBytes(man).String() + `","size":` + itoa(len(man)) +
		`,"annotations":{"vnd.docker.reference.digest":"` + img.Digest.String() + `","vnd.docker.reference.type":"attestation-manifest"},"platform":{"architecture":"unknown","os":"unknown"}}]}`)
	if err := src.PushManifest(ctx, "att/app", "v1", "application/vnd.oci.image.index.v1+json", idx); err != nil {
		t.Fatal(err)
	}
	dst := testregistry.Start(t, testregistry.Options{Plain: true})
	code, _, stderr := runCLI("--insecure", "--log-format", "console", "--all-platforms", "process", "registry://"+src.Host+"/att/app:v1", "registry://"+dst.Host+"/copy/app:v1")
	if code != 0 || !strings.Contains(stderr, "verified OK") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	tr, err := transport.New(transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tr.Registry(dst.Host, transport.RegistryOptions{Insecure: true}).GetManifest(ctx, "copy/app", "v1", registrysrc.Accepted())
	if err != nil || m.Digest != digest.FromBytes(idx) {
		t.Errorf("%v: digest %s at the destination, want %s", err, m.Digest, digest.FromBytes(idx))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
