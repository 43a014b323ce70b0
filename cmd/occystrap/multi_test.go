package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/sources/quay"
)

// kollaCorpus seeds openstack.kolla with n images tagged
// 2025.1-debian-bookworm in groups sharing base layers; every fifth image
// was pushed in February (before since=2026-03-01). It returns the images
// the motivating command must process, sorted.
func kollaCorpus(t *testing.T, q *testquay.Server, reg *testregistry.Registry, n int) []testquay.SeededImage {
	t.Helper()
	seeded, err := q.Seed(context.Background(), reg, testquay.Corpus{
		Namespace: "openstack.kolla", Images: n, Groups: 3, Common: 2, Group: 2, Own: 1, LayerSize: 8 << 10,
		Tag:  "2025.1-debian-bookworm",
		Name: func(i int) string { return fmt.Sprintf("svc-%02d", (i*7)%n) }, // pushed out of name order
		Pushed: func(i int) time.Time {
			if i%5 == 4 {
				return time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
			}
			return time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []testquay.SeededImage
	for i, im := range seeded.Images {
		if i%5 != 4 {
			want = append(want, im)
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Repo < want[j].Repo })
	return want
}

// tree lists a directory: path -> sha256 of the content (or "dir").
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = digest.FromBytes(b).String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes a
// multi-image run makes (as *os.File is).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e lockedBuffer
	code = run(consoleUnlessAsked(args), &o, &e)
	return code, o.b.String(), e.b.String()
}

// TestQuayMotivatingCommand runs the command against the emulator,
// with -J 1 and -J 8: every image resolved and written, each layer fetched
// from the registry once, the output equal to single-image runs.
func TestQuayMotivatingCommand(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 7}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 20)
	t.Setenv(quayHostEnv, reg.Host)

	// The reference: one single-image run per image, into one directory.
	single := t.TempDir()
	for _, im := range want {
		code, _, stderr := runCLI("--insecure", "--log-format", "console", "process",
			"registry://"+reg.Host+"/"+im.Repo+":"+im.Tag, "dir://"+single+"?unique_names=true")
		if code != 0 {
			t.Fatalf("single run of %s: %d\n%s", im.Repo, code, stderr)
		}
	}
	wantTree := tree(t, single)

	for _, jobs := range []string{"1", "8"} {
		t.Run("J"+jobs, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "openstack-kolla-2025.1-debian-bookworm")
			before := q.AllBlobGets()
			code, _, stderr := runCLI("--insecure", "--log-format", "console", "-J", jobs, "process",
				"quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01",
				"dir://"+out+"?unique_names=true")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			// Each layer of the resolved images was requested once.
			after := q.AllBlobGets()
			for _, im := range want {
				for _, l := range im.Image.Layers {
					if n := after[l.Digest] - before[l.Digest]; n != 1 {
						t.Errorf("layer %s GET %d times, want 1", l.Digest, n)
					}
				}
			}
			if d := cmp.Diff(wantTree, tree(t, out)); d != "" {
				t.Errorf("output differs from single-image runs (-single +multi):\n%s", d)
			}
			// The catalog lists every image once.
			var cat map[string]map[string]string
			b, err := os.ReadFile(filepath.Join(out, "catalog.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &cat); err != nil {
				t.Fatal(err)
			}
			wantCat := map[string]map[string]string{}
			for _, im := range want {
				wantCat[im.Repo] = map[string]string{im.Tag: "manifest-" + strings.ReplaceAll(im.Repo, "/", "_") + "-" + im.Tag + ".json"}
			}
			if d := cmp.Diff(wantCat, cat); d != "" {
				t.Errorf("catalog (-want +got):\n%s", d)
			}
			// The text: header, one [k/N] line per image, summary, no failures.
			if !strings.Contains(stderr, fmt.Sprintf("Processing %d images (%s parallel)...\n", len(want), jobs)) {
				t.Errorf("no header in\n%s", stderr)
			}
			done := regexp.MustCompile(`(?m)^\[(\d+)/(\d+)\] (\S+)$`).FindAllStringSubmatch(stderr, -1)
			var names []string
			for k, m := range done {
				if m[1] != fmt.Sprint(k+1) || m[2] != fmt.Sprint(len(want)) {
					t.Errorf("progress line %q", m[0])
				}
				names = append(names, m[3])
			}
			sort.Strings(names)
			var wantNames []string
			for _, im := range want {
				wantNames = append(wantNames, reg.Host+"/"+im.Repo+":"+im.Tag)
			}
			if d := cmp.Diff(wantNames, names); d != "" {
				t.Errorf("[k/N] lines (-want +got):\n%s", d)
			}
			if !regexp.MustCompile(fmt.Sprintf(`Summary: %d/%d images, %d layers, .*verified OK\n`, len(want), len(want), 5*len(want))).MatchString(stderr) ||
				!strings.HasSuffix(stderr, "No failed images.\n") {
				t.Errorf("summary in\n%s", stderr)
			}
		})
	}
}

// TestQuayFailingImage: one image's blob is corrupt; it is reported, the
// others complete, the exit code is 1.
func TestQuayFailingImage(t *testing.T) {
	var bad atomic.Value // the digest to corrupt, set once the corpus is made
	bad.Store("")
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Corrupt, Times: -1,
		Match: func(r *http.Request) bool { d := bad.Load().(string); return d != "" && testregistry.IsBlobGetOf(d)(r) }})
	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true, Wrap: in.Wrap})
	want := kollaCorpus(t, q, reg, 10)
	broken := want[3]
	bad.Store(broken.Image.Layers[len(broken.Image.Layers)-1].Digest.String()) // its own layer
	out := t.TempDir()
	code, _, stderr := runCLI("--insecure", "--log-format", "console", "--retries", "0", "-J", "3", "process",
		"quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01&host="+reg.Host, "dir://"+out+"?unique_names=true")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	name := reg.Host + "/" + broken.Repo + ":" + broken.Tag
	if !strings.Contains(stderr, "Failed images:\n  "+name+": ") || !strings.Contains(stderr, "digest mismatch") {
		t.Errorf("failure not listed:\n%s", stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("Summary: %d/%d images,", len(want)-1, len(want))) || !strings.Contains(stderr, ", 1 failed") {
		t.Errorf("summary:\n%s", stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("Error: 1 of %d images failed", len(want))) {
		t.Errorf("error line:\n%s", stderr)
	}
	for _, im := range want {
		_, err := os.Stat(filepath.Join(out, "manifest-"+strings.ReplaceAll(im.Repo, "/", "_")+"-"+im.Tag+".json"))
		if (im.Repo == broken.Repo) != os.IsNotExist(err) {
			t.Errorf("manifest of %s: %v", im.Repo, err)
		}
	}
}

func TestQuayMultiErrors(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true})
	kollaCorpus(t, q, reg, 3)
	src := "quay://openstack.kolla/*:2025.1-debian-bookworm?host=" + reg.Host
	cases := []struct {
		name, src, dest string
		code            int
		stderr          string
	}{
		{"tar", src, "tar://x.tar", 1, "Error: tar:// output is not supported for multi-image sources, as every image would overwrite the last. Use dir://?unique_names=true instead.\n"},
		{"oci", src, "oci://x", 1, "Error: oci:// output is not supported for multi-image sources"},
		{"mounts", src, "mounts://x", 1, "Error: mounts:// output is not supported for multi-image sources"},
		{"none", "quay://openstack.kolla/nothing-*:2025.1-debian-bookworm?host=" + reg.Host, "dir://" + t.TempDir(), 0, "No images found matching quay://openstack.kolla/nothing-*:2025.1-debian-bookworm?host=" + reg.Host + "\n"},
		{"no-org", "quay:///x", "dir://" + t.TempDir(), 2, "Error: quay:// URI requires a namespace/organization\n"},
		{"since", src + "&since=yesterday", "dir://" + t.TempDir(), 2, "Error: Invalid since date 'yesterday', expected YYYY-MM-DD format\n"},
		{"no-unique", src, "dir://" + t.TempDir(), 0, "without unique_names=true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI("--insecure", "--log-format", "console", "process", c.src, c.dest)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, c.code, c.stderr)
			}
		})
	}
}

func TestQuayAuthText(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{Token: "sekrit"}, testregistry.Options{Plain: true})
	kollaCorpus(t, q, reg, 2)
	src := "quay://openstack.kolla/*:2025.1-debian-bookworm?host=" + reg.Host
	code, _, stderr := runCLI("--insecure", "--log-format", "console", "process", src, "dir://"+t.TempDir()+"?unique_names=true")
	if code != 1 || !strings.HasSuffix(stderr, "Error: Authentication failed for quay.io API. Provide a valid quay.io API token for accessing private organizations.\n") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
	// --password is the fallback token; ?token= wins over it.
	for _, args := range [][]string{{"--password", "sekrit", src}, {"--password", "wrong", src + "&token=sekrit"}} {
		code, _, stderr = runCLI("--insecure", "--log-format", "console", args[0], args[1], "process", args[2], "dir://"+t.TempDir()+"?unique_names=true")
		if code != 0 || !strings.Contains(stderr, "Summary: 2/2 images") {
			t.Errorf("%v: exit %d:\n%s", args, code, stderr)
		}
	}
}

func TestMultiDestination(t *testing.T) {
	t.Parallel()
	ref := quay.Ref{Host: "quay.io", Repo: "openstack.kolla/nova-api", Tag: "2025.1"}
	cases := []struct{ in, want, err string }{
		{in: "registry://reg.example:5000/mirror", want: "registry://reg.example:5000/mirror/nova-api:2025.1"},
		{in: "registry://reg.example:5000/mirror/kolla/?insecure=true", want: "registry://reg.example:5000/mirror/kolla/nova-api:2025.1?insecure=true"},
		{in: "registry://reg.example:5000", want: "registry://reg.example:5000/nova-api:2025.1"},
		{in: "docker://", want: "docker://nova-api:2025.1"},
		{in: "docker://kolla?socket=/run/d.sock", want: "docker://kolla/nova-api:2025.1?socket=/run/d.sock"},
		{in: "dir://x?unique_names=true", want: "dir://x?unique_names=true"},
		{in: "registry://reg.example/mirror:v1", err: "names a place, not an image"},
		{in: "docker://kolla:v1", err: "names a place, not an image"},
	}
	for _, c := range cases {
		got, err := multiDestination(c.in, ref)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// consoleUnlessAsked gives the tests that read the plain lines (Error:,
// Summary:, [k/N]) the console form, unless they ask for a format.
func consoleUnlessAsked(args []string) []string {
	for _, a := range args {
		if a == "--log-format" || strings.HasPrefix(a, "--log-format=") {
			return args
		}
	}
	return append([]string{"--log-format", "console"}, args...)
}
