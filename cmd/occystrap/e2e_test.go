package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage/stagetest"
	"github.com/occystrap/occystrap/transport"
)

// These tests run the CLI as a user does, through run(), on archives and
// registries built in the test.

func appImage() fixture.Image {
	return fixture.Image{
		Name: "fixture/app",
		Tag:  "v1",
		Layers: []fixture.Layer{
			{fixture.Dir("etc", 0o755), fixture.File("etc/app.conf", "base\n", 0o644), fixture.Dir("opt/app", 0o755),
				fixture.File("opt/app/old.conf", "old\n", 0o644), fixture.Dir("var/cache", 0o755), fixture.File("var/cache/x", "x", 0o644)},
			{fixture.Whiteout("opt/app/old.conf"), fixture.Opaque("var/cache"), fixture.File("var/cache/y", "y", 0o644),
				fixture.Symlink("etc/link.conf", "app.conf")},
			{fixture.File("opt/app/new.conf", "new\n", 0o600), fixture.Hardlink("opt/app/hard.conf", "opt/app/new.conf")},
		},
	}
}

func writeArchive(t *testing.T, oci bool) (string, *fixture.Archive) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var a *fixture.Archive
	if oci {
		a, err = fixture.WriteOCIArchive(f, appImage(), fixture.Gzip)
	} else {
		a, err = fixture.WriteLegacyArchive(f, appImage())
	}
	if err != nil {
		t.Fatal(err)
	}
	return path, a
}

// occystrap runs the CLI and returns its exit code, stdout and stderr.
func occystrap(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(consoleUnlessAsked(args), &out, &errb)
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, out, errs := occystrap(t, args...)
	if code != 0 {
		t.Fatalf("occystrap %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, errs)
	}
	return out, errs
}

// summaryRE finds the summary: the console line, or the text of the JSON
// summary event.
var summaryRE = regexp.MustCompile(`(?m)(^|"text":")Summary: 3 layers, [0-9.]+ (B|KB|MB), [0-9]+\.[0-9]s, verified OK("|$)`)

func TestProcessTarToDir(t *testing.T) {
	for _, oci := range []bool{false, true} {
		t.Run(map[bool]string{false: "legacy", true: "oci-gzip"}[oci], func(t *testing.T) {
			src, a := writeArchive(t, oci)
			out := filepath.Join(t.TempDir(), "out")
			_, stderr := mustRun(t, "--log-format", "console", "process", "tar://"+src, "dir://"+out)
			if !summaryRE.MatchString(stderr) {
				t.Errorf("no summary line in stderr:\n%s", stderr)
			}

			var manifest []map[string]any
			stagetest.ReadJSON(t, filepath.Join(out, "manifest.json"), &manifest)
			var layers []any
			for _, n := range a.LayerNames {
				layers = append(layers, n+"/layer.tar")
			}
			want := []map[string]any{{"Config": a.ConfigPath, "Layers": layers, "RepoTags": []any{"app:v1"}}}
			if d := cmp.Diff(want, manifest); d != "" {
				t.Errorf("manifest.json (-want +got):\n%s", d)
			}
			var catalog map[string]map[string]string
			stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &catalog)
			if d := cmp.Diff(map[string]map[string]string{"fixture/app": {"v1": "manifest.json"}}, catalog); d != "" {
				t.Errorf("catalog.json (-want +got):\n%s", d)
			}
			cfg, err := os.ReadFile(filepath.Join(out, a.ConfigPath))
			if err != nil || !bytes.Equal(cfg, a.Config) {
				t.Errorf("config differs from the archive's (err %v)", err)
			}
			for i, n := range a.LayerNames {
				got, err := os.ReadFile(filepath.Join(out, n, "layer.tar"))
				if err != nil || !bytes.Equal(got, a.Layers[i]) {
					t.Errorf("layer %d (%s): not the uncompressed layer tar (err %v)", i, n, err)
				}
			}

			// A second run writes no layer again.
			before := inodes(t, out, a.LayerNames)
			mustRun(t, "--log-format", "console", "process", "tar://"+src, "dir://"+out)
			if d := cmp.Diff(before, inodes(t, out, a.LayerNames)); d != "" {
				t.Errorf("rerun rewrote layers (-before +after):\n%s", d)
			}
		})
	}
}

type fileID struct {
	Ino   uint64
	Mtime int64
}

func inodes(t *testing.T, dir string, names []string) map[string]fileID {
	t.Helper()
	m := map[string]fileID{}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n, "layer.tar"))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		m[n] = fileID{st.Ino, fi.ModTime().UnixNano()}
	}
	return m
}

func TestProcessTarToDirUniqueNamesExpand(t *testing.T) {
	src, _ := writeArchive(t, false)
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "--log-format", "console", "process", "tar:"+src, "dir://"+out+"?unique_names=true&expand=true")

	var manifest []map[string]any
	stagetest.ReadJSON(t, filepath.Join(out, "manifest-fixture_app-v1.json"), &manifest)
	if len(manifest) != 1 || manifest[0]["ImageName"] != "fixture/app" {
		t.Errorf("manifest: %v", manifest)
	}
	var catalog map[string]map[string]string
	stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &catalog)
	if catalog["fixture/app"]["v1"] != "manifest-fixture_app-v1.json" {
		t.Errorf("catalog: %v", catalog)
	}
	root := filepath.Join(out, "manifest-fixture_app-v1")
	var got []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && !d.IsDir() {
			got = append(got, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/app.conf", "etc/link.conf", "opt/app/hard.conf", "opt/app/new.conf", "var/cache/y"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("expanded tree (-want +got):\n%s", d)
	}
	if target, err := os.Readlink(filepath.Join(root, "etc/link.conf")); err != nil || target != "app.conf" {
		t.Errorf("symlink: %q %v", target, err)
	}
	a, _ := os.Stat(filepath.Join(root, "opt/app/hard.conf"))
	b, _ := os.Stat(filepath.Join(root, "opt/app/new.conf"))
	if !os.SameFile(a, b) {
		t.Error("hardlink not preserved")
	}
}

func TestProcessTarToTar(t *testing.T) {
	src, a := writeArchive(t, true)
	dst := filepath.Join(t.TempDir(), "copy.tar")
	_, stderr := mustRun(t, "--log-format", "console", "process", "tar://"+src, "tar://"+dst)
	if !summaryRE.MatchString(stderr) {
		t.Errorf("no summary line:\n%s", stderr)
	}
	// Read the copy back with our own input: same image, same layers.
	copySrc, err := tarballsrc.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer copySrc.Close()
	if got := copySrc.Image().String(); got != "app:v1" {
		// RepoTags holds the last path part of the name, as the original writes it.
		t.Errorf("image read back = %q, want app:v1", got)
	}
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "--log-format", "console", "process", "tar://"+dst, "dir://"+out)
	for i, n := range a.LayerNames {
		got, err := os.ReadFile(filepath.Join(out, n, "layer.tar"))
		if err != nil || !bytes.Equal(got, a.Layers[i]) {
			t.Errorf("layer %d (%s) after a tar round trip differs (err %v)", i, n, err)
		}
	}
}

func TestProcessErrors(t *testing.T) {
	src, _ := writeArchive(t, false)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing archive", []string{"process", "tar:///nonexistent.tar", "dir:///tmp/x"}, 1, "Error: "},
		{"bad scheme", []string{"process", "ftp://x", "dir://o"}, 2, `Error: Unknown input scheme "ftp"`},
		{"bad output option", []string{"process", "tar://" + src, "dir://o?uniq=1"}, 2, `unknown option "uniq"`},
		{"unknown filter", []string{"process", "-f", "nope", "tar://" + src, "dir://o"}, 2, `unknown filter "nope"`},
		{"usage", []string{"process", "tar://" + src}, 2, "Error: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := occystrap(t, append([]string{"--log-format", "console"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}

func TestSearchCommandOnArchive(t *testing.T) {
	src, a := writeArchive(t, false)
	out, _ := mustRun(t, "--log-format", "console", "search", "--script-friendly", "tar://"+src, "*.conf")
	want := strings.Join([]string{
		"fixture/app:v1:" + a.LayerNames[0] + ":etc/app.conf",
		"fixture/app:v1:" + a.LayerNames[0] + ":opt/app/old.conf",
		"fixture/app:v1:" + a.LayerNames[1] + ":opt/app/.wh.old.conf",
		"fixture/app:v1:" + a.LayerNames[1] + ":etc/link.conf",
		"fixture/app:v1:" + a.LayerNames[2] + ":opt/app/new.conf",
		"fixture/app:v1:" + a.LayerNames[2] + ":opt/app/hard.conf",
	}, "\n") + "\n"
	if d := cmp.Diff(want, out); d != "" {
		t.Errorf("search output (-want +got):\n%s", d)
	}
}

// TestProcessRegistryToDir pulls over TLS with HTTP/2 (trusting the test CA
// through SSL_CERT_FILE, as a user would) and over plain HTTP with
// --insecure, then checks that a rerun downloads no layer again.
func TestProcessRegistryToDir(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "insecure"}[plain], func(t *testing.T) {
			var blobGets atomic.Int64
			reg := testregistry.Start(t, testregistry.Options{Plain: plain, Auth: testregistry.AuthToken, Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if testregistry.IsBlobGet(r) {
						blobGets.Add(1)
					}
					h.ServeHTTP(w, r)
				})
			}})
			img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 9, Layers: 4})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			args := []string{"--log-format", "console"}
			if plain {
				args = append(args, "--insecure")
			} else {
				ca := filepath.Join(t.TempDir(), "ca.pem")
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw})
				if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Setenv("SSL_CERT_FILE", ca)
			}
			out := filepath.Join(t.TempDir(), "out")
			for _, dst := range []string{"dir://" + out + "?expand=true", "tar://" + out + ".tar"} {
				mustRun(t, append(args, "process", "registry://"+reg.Host+"/fixture/app:v1", dst)...)
			}
			for _, l := range img.Layers {
				got, err := os.ReadFile(filepath.Join(out, l.Digest.Encoded(), "layer.tar"))
				if err != nil || !bytes.Equal(got, l.Tar) {
					t.Errorf("layer %s: not the uncompressed tar (err %v)", l.Digest, err)
				}
			}
			cfg, err := os.ReadFile(filepath.Join(out, img.ConfigDigest.Encoded()+".json"))
			if err != nil || !bytes.Equal(cfg, img.Config) {
				t.Errorf("config not written as fetched (err %v)", err)
			}
			// Two runs so far: config + 4 layers each.
			if got := blobGets.Load(); got != 10 {
				t.Errorf("%d blob GETs for two pulls, want 10", got)
			}
			mustRun(t, append(args, "process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+out+"?expand=true")...)
			if got := blobGets.Load(); got != 11 {
				t.Errorf("rerun into the same dir fetched %d blobs, want only the config", got-10)
			}
		})
	}
}

// TestTarOutputLoadsIntoDocker loads our tar:// output into a real Docker
// engine and checks the image it made is ours (its Id is the config digest).
func TestTarOutputLoadsIntoDocker(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	for _, oci := range []bool{false, true} {
		src, a := writeArchive(t, oci)
		dst := filepath.Join(t.TempDir(), "copy.tar")
		mustRun(t, "--log-format", "console", "process", "tar://"+src, "tar://"+dst)
		_ = eng.Remove(ctx, "app:v1")
		if msg, err := eng.Load(ctx, dst); err != nil {
			t.Fatalf("docker load: %v (%s)", err, msg)
		}
		id, err := eng.ImageID(ctx, "app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if want := "sha256:" + a.ConfigDigest.Encoded(); id != want {
			t.Errorf("loaded image Id %s, want %s", id, want)
		}
		_ = eng.Remove(ctx, "app:v1")
	}
}

// TestProcessRegistryFailureLeavesNothing corrupts one layer of a pull into
// an ordered sink (expand): the run fails with the digest error, does not
// hang waiting for the reorder window, and leaves no layer.tar of the broken
// layer and no temporary file.
func TestProcessRegistryFailureLeavesNothing(t *testing.T) {
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 21, Layers: 12})
	if err != nil {
		t.Fatal(err)
	}
	bad := img.Layers[1].Digest
	inj := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Corrupt, Match: testregistry.IsBlobGetOf(bad.String()), Times: -1})
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: inj.Wrap})
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := occystrap(t, "--log-format", "console", "--insecure", "--temp-dir", tmp, "-j", "2",
		"process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+out+"?expand=true")
	if code != 1 || !strings.Contains(stderr, "Error: ") || !strings.Contains(stderr, bad.Encoded()) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and an error naming %s", code, stderr, bad)
	}
	if _, err := os.Stat(filepath.Join(out, bad.Encoded(), "layer.tar")); !os.IsNotExist(err) {
		t.Errorf("the corrupt layer left a layer.tar (stat: %v)", err)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("temp dir not empty: %v", left)
	}
	var stray []string
	_ = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			stray = append(stray, p)
		}
		return nil
	})
	if len(stray) > 0 {
		t.Errorf("temporary files left in the output: %v", stray)
	}
}

// TestRegistryToRegistryOneConnectionEach copies an 8-layer image of small
// blobs (below transport.BulkMin, so their uploads stay on HTTP/2) between
// two TLS registries: the parallel HEADs and uploads to the destination
// share one HTTP/2 connection (a burst of first requests used to dial one
// TLS connection each and throw all but one away), and the source is read
// over one too.
func TestRegistryToRegistryOneConnectionEach(t *testing.T) {
	src := testregistry.Start(t, testregistry.Options{Auth: testregistry.AuthToken})
	dst := testregistry.Start(t, testregistry.Options{Auth: testregistry.AuthToken})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 5, Layers: 8, LayerSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Push(context.Background(), "a/b", "v1", img); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	var pems []byte
	for _, r := range []*testregistry.Registry{src, dst} {
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})...)
	}
	if err := os.WriteFile(ca, pems, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	s0, d0 := src.NewConns(), dst.NewConns()
	for _, l := range img.Layers {
		if len(l.Blob) > transport.BulkMin {
			t.Fatalf("layer of %d bytes: the test needs blobs below transport.BulkMin (%d)", len(l.Blob), transport.BulkMin)
		}
	}
	mustRun(t, "--log-format", "console", "-j", "8", "process", "registry://"+src.Host+"/a/b:v1", "registry://"+dst.Host+"/c/d:v1")
	if s, d := src.NewConns()-s0, dst.NewConns()-d0; s != 1 || d != 1 {
		t.Errorf("connections: %d to the source, %d to the destination; want 1 each", s, d)
	}
}

// TestSingleImageProgress: a single-image run that takes a while logs its
// progress (bytes done of bytes known) every --progress-interval, and never
// faster than asked.
func TestSingleImageProgress(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: testregistry.Latency(60 * time.Millisecond)})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 41, Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	const interval = 40 * time.Millisecond
	_, stderr := mustRun(t, "--log-format", "json", "--insecure", "-j", "1", "--progress-interval", interval.String(), "process",
		"registry://"+reg.Host+"/fixture/app:v1", "dir://"+filepath.Join(t.TempDir(), "out"))
	var times []time.Time
	var last map[string]any
	var begun time.Time
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		ts, err := time.Parse(time.RFC3339Nano, ev["time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if ev["event"] == "processing_image" {
			begun = ts
		}
		if ev["event"] != "progress" {
			continue
		}
		times = append(times, ts)
		last = ev
	}
	if len(times) < 2 {
		t.Fatalf("%d progress events, want at least 2:\n%s", len(times), stderr)
	}
	// The k-th event comes at least k intervals after the run began (the
	// timestamps have millisecond precision): never more often than asked.
	if span := times[len(times)-1].Sub(begun); span < time.Duration(len(times))*interval-time.Millisecond {
		t.Errorf("%d progress events within %v, want at most one per %v", len(times), span, interval)
	}
	if known, ok := last["bytes_known"].(float64); !ok || known <= 0 {
		t.Errorf("last progress event has no bytes known: %v", last)
	}
	if _, ok := last["bytes"].(float64); !ok {
		t.Errorf("progress event without bytes: %v", last)
	}
}

// TestProgressReportsAdaptiveRate: with --rate-limit auto against a
// registry that answers 429 above a few requests per second, the rate is
// cut (a rate_limit event) and the progress events carry the limit in
// force.
func TestProgressReportsAdaptiveRate(t *testing.T) {
	lim := rate.NewLimiter(4, 2)
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(next http.Handler) http.Handler {
		slow := testregistry.Latency(40 * time.Millisecond)(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !lim.Allow() {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			slow.ServeHTTP(w, r)
		})
	}})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 43, Layers: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	_, stderr := mustRun(t, "--log-format", "json", "--insecure", "-j", "6", "--retries", "8", "--rate-limit", "auto",
		"--progress-interval", "30ms", "process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+filepath.Join(t.TempDir(), "out"))
	cuts, progress, limited := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		switch ev["event"] {
		case "rate_limit":
			cuts++
		case "progress":
			progress++
			l, ok := ev["rate_limit_per_s"].(float64)
			if !ok {
				t.Errorf("progress event without rate_limit_per_s: %s", line)
			}
			if l > 0 {
				limited++
			}
		}
	}
	if cuts == 0 || progress == 0 || limited == 0 {
		t.Errorf("%d rate cuts, %d progress events, %d of them with a limit; want some of each:\n%s", cuts, progress, limited, stderr)
	}
}
