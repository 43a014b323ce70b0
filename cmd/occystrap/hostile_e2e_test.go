package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// These tests attack the CLI the way hostile inputs and faults do (issue
// 10): a full disk, an endless body, images that plant symlinks for later
// images, unsafe names, corrupt layers, control characters in names.

// finalNames lists what a consumer would trust in an output directory:
// every manifest, catalog and archive under its final name.
func finalNames(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if n == "catalog.json" || strings.HasPrefix(n, "manifest") && strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".tar") && !strings.HasPrefix(n, ".occystrap-tmp-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestFullDiskLeavesNoFinishedOutput pulls an image whose layers do not fit
// in the temporary directory (a small tmpfs: ENOSPC in the source) into
// dir:// and tar:// outputs on a disk with room. Every run fails, and none
// leaves a manifest, a catalog or a final archive: a sink finishes only when
// the whole run succeeded. The failure and the end of the sink's input race,
// so the runs are repeated.
func TestFullDiskLeavesNoFinishedOutput(t *testing.T) {
	tmp := testenv.Tmpfs(t, 1<<20)
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 41, Layers: 3, LayerSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		base := t.TempDir()
		for _, dst := range []string{"dir://" + filepath.Join(base, "dir"), "dir://" + filepath.Join(base, "expand") + "?expand=true&unique_names=true", "tar://" + filepath.Join(base, "out.tar")} {
			code, _, stderr := occystrap(t, "--log-format", "json", "--insecure", "--temp-dir", tmp, "-j", "3",
				"process", "registry://"+reg.Host+"/fixture/app:v1", dst)
			if code != 1 || !strings.Contains(stderr, "no space left on device") {
				t.Fatalf("run %d into %s: exit %d, want 1 with ENOSPC; stderr:\n%s", i, dst, code, stderr)
			}
		}
		if found := finalNames(t, base); len(found) > 0 {
			t.Fatalf("run %d: a failed run left finished-looking outputs: %v", i, found)
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Fatalf("run %d: temporary files left: %v", i, left)
		}
	}
	// The output's own disk full: the layer writes fail in the sink.
	full := testenv.Tmpfs(t, 1<<20)
	for _, dst := range []string{"dir://" + filepath.Join(full, "dir"), "dir://" + filepath.Join(full, "expand") + "?expand=true", "tar://" + filepath.Join(full, "out.tar")} {
		code, _, stderr := occystrap(t, "--log-format", "json", "--insecure", "-j", "3",
			"process", "registry://"+reg.Host+"/fixture/app:v1", dst)
		if code != 1 || !strings.Contains(stderr, "no space left on device") {
			t.Fatalf("into %s: exit %d, want 1 with ENOSPC; stderr:\n%s", dst, code, stderr)
		}
	}
	if found := finalNames(t, full); len(found) > 0 {
		t.Fatalf("failed runs into a full output left finished-looking outputs: %v", found)
	}
	if left := leftovers(t, full, t.TempDir()); len(left) > 0 {
		t.Errorf("failed runs into a full output left temporaries: %v", left)
	}
}

// TestWriteFailureStopsReading serves a layer whose body is as long as its
// manifest declares (256 MiB of zeros, the wrong digest) while the
// temporary directory holds 1 MiB. The write fails with ENOSPC; the run must
// stop reading the body then, not download the rest to check its digest.
func TestWriteFailureStopsReading(t *testing.T) {
	tmp := testenv.Tmpfs(t, 1<<20)
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 42, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	const declared = 256 << 20
	bogus := digest.FromString("endless layer")
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers = []v1.Descriptor{{MediaType: "application/vnd.docker.image.rootfs.diff.tar", Digest: bogus, Size: declared}}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/fixture/endless/manifests/v1"):
				w.Header().Set("Content-Type", m.MediaType)
				_, _ = w.Write(manifest)
			case testregistry.IsBlobGetOf(bogus.String())(r):
				w.Header().Set("Content-Length", strconv.Itoa(declared))
				buf := make([]byte, 64<<10)
				for sent := 0; sent < declared; sent += len(buf) {
					n, err := w.Write(buf)
					served.Add(int64(n))
					if err != nil {
						return
					}
				}
			default:
				h.ServeHTTP(w, r)
			}
		})
	}})
	if err := reg.Push(context.Background(), "fixture/endless", "seed", img); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := occystrap(t, "--log-format", "json", "--insecure", "--temp-dir", tmp, "--retries", "0",
		"process", "registry://"+reg.Host+"/fixture/endless:v1", "dir://"+filepath.Join(t.TempDir(), "out"))
	if code != 1 || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d, want 1 with ENOSPC; stderr:\n%s", code, stderr)
	}
	// 1 MiB was written; socket and read buffers hold a few more.
	if n := served.Load(); n > 32<<20 {
		t.Errorf("the server sent %d MiB of the body after the write failed at 1 MiB", n>>20)
	}
}

// member is one file of a hand-made archive.
type member struct{ name, data string }

// writeSave writes a docker-save archive whose manifest.json lists config
// and layers as given (hostile paths included) and holds members. The
// config member's rootfs.diff_ids are set to the sha256 of the layers'
// members, so that the archive is sound but for what a test makes hostile.
func writeSave(t *testing.T, config string, layers []string, members ...member) string {
	t.Helper()
	clean := func(p string) string { return strings.TrimLeft(path.Clean("/"+p), "/") }
	byName := map[string]string{}
	for _, m := range members {
		byName[clean(m.name)] = m.data
	}
	var diffIDs []digest.Digest
	for _, l := range layers {
		diffIDs = append(diffIDs, digest.FromString(byName[clean(l)]))
	}
	for i, m := range members {
		if clean(m.name) != clean(config) {
			continue
		}
		var cfg map[string]any
		if err := json.Unmarshal([]byte(m.data), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": diffIDs}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		members[i].data = string(b)
	}
	man, err := json.Marshal([]fixture.ManifestEntry{{Config: config, RepoTags: []string{"y/app:v1"}, Layers: layers}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hostile.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range append(members, member{"manifest.json", string(man)}) {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// layerTar is a small valid layer.
func layerTar(t *testing.T) string {
	t.Helper()
	return string(fixture.LayerTar(fixture.Layer{fixture.File("hello", "world\n", 0o644)}))
}

// emptyDir fails the test when dir holds anything.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("written outside the output: %s", filepath.Join(dir, e.Name()))
	}
}

// plantSymlink expands image A, whose layer holds evil -> outside, into
// dir://out?expand=true&unique_names=true: out/manifest-x_app-v1/evil is
// then a symlink to outside.
func plantSymlink(t *testing.T, out, outside string) {
	t.Helper()
	a := fixture.Image{Name: "x/app", Tag: "v1", Layers: []fixture.Layer{{fixture.Symlink("evil", outside)}}}
	p := filepath.Join(t.TempDir(), "a.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.WriteLegacyArchive(f, a); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustRun(t, "--log-format", "json", "process", "tar://"+p, "dir://"+out+"?expand=true&unique_names=true")
	if target, err := os.Readlink(filepath.Join(out, "manifest-x_app-v1", "evil")); err != nil || target != outside {
		t.Fatalf("image A did not plant its symlink: %q, %v", target, err)
	}
}

// TestSymlinkPlantedByAnotherImage is issue 10's first attack: image A,
// expanded into an output, leaves a symlink to a directory outside; image B
// names a layer (or its config) through that symlink. Every output that
// shares the directory refuses B, and nothing is written outside.
func TestSymlinkPlantedByAnotherImage(t *testing.T) {
	cfg := `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`
	tests := []struct {
		name   string
		output func(out string) string
		root   bool
		config string
		layers []string
	}{
		{name: "dir layer", output: func(out string) string { return "dir://" + out }, config: "c.json", layers: []string{"manifest-x_app-v1/evil/layer.tar"}},
		{name: "dir config", output: func(out string) string { return "dir://" + out }, config: "manifest-x_app-v1/evil/c.json", layers: []string{"l/layer.tar"}},
		{name: "dir expand layer", output: func(out string) string { return "dir://" + out + "?expand=true" }, config: "c.json", layers: []string{"manifest-x_app-v1/evil/layer.tar"}},
		{name: "mounts layer", root: true, output: func(out string) string { return "mounts://" + out }, config: "c.json", layers: []string{"manifest-x_app-v1/evil/layer.tar"}},
		{name: "mounts config", root: true, output: func(out string) string { return "mounts://" + out }, config: "manifest-x_app-v1/evil/c.json", layers: []string{"l/layer.tar"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.RequireRoot(t)
			}
			base := t.TempDir()
			out, outside := filepath.Join(base, "out"), filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			plantSymlink(t, out, outside)
			members := []member{{tc.config, cfg}}
			for _, l := range tc.layers {
				members = append(members, member{l, layerTar(t)})
			}
			b := writeSave(t, tc.config, tc.layers, members...)
			code, _, stderr := occystrap(t, "--log-format", "json", "process", "tar://"+b, tc.output(out))
			if code != 1 || !strings.Contains(stderr, "not a plain relative path") {
				t.Errorf("exit %d, want 1 refusing the name; stderr:\n%s", code, stderr)
			}
			emptyDir(t, outside)
		})
	}
}

// TestUnsafeNamesRefusedByEveryOutput (issue 10, class 8): a manifest.json
// whose config or layer path is absolute or climbs out is refused by tar://
// as by dir://, and leaves no archive.
func TestUnsafeNamesRefusedByEveryOutput(t *testing.T) {
	cfg := `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`
	tests := []struct {
		name    string
		config  string
		layers  []string
		members []member
	}{
		{name: "absolute config", config: "/etc/passwd", layers: []string{"l/layer.tar"}, members: []member{{"etc/passwd", cfg}, {"l/layer.tar", ""}}},
		{name: "climbing layer", config: "c.json", layers: []string{"../../x/layer.tar"}, members: []member{{"c.json", cfg}, {"x/layer.tar", ""}}},
		{name: "absolute layer", config: "c.json", layers: []string{"/x/layer.tar"}, members: []member{{"c.json", cfg}, {"x/layer.tar", ""}}},
		{name: "layer named manifest.json", config: "c.json", layers: []string{"manifest.json/layer.tar"}, members: []member{{"c.json", cfg}, {"manifest.json/layer.tar", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.members {
				if tc.members[i].data == "" {
					tc.members[i].data = layerTar(t)
				}
			}
			src := writeSave(t, tc.config, tc.layers, tc.members...)
			base := t.TempDir()
			for _, dst := range []string{"tar://" + filepath.Join(base, "out.tar"), "dir://" + filepath.Join(base, "dir")} {
				code, _, stderr := occystrap(t, "--log-format", "json", "process", "tar://"+src, dst)
				if code != 1 || !strings.Contains(stderr, "not a plain relative path") {
					t.Errorf("%s: exit %d, want 1 refusing the name; stderr:\n%s", dst, code, stderr)
				}
			}
			if found := finalNames(t, base); len(found) > 0 {
				t.Errorf("refused runs left outputs: %v", found)
			}
		})
	}
}

// TestSearchCorruptLayerFails (issue 10, class 9): search prints what it
// could read, then exits 1 naming the corrupt layer.
func TestSearchCorruptLayerFails(t *testing.T) {
	good := string(fixture.LayerTar(fixture.Layer{fixture.File("etc/good.conf", "x", 0o644)}))
	broken := string(fixture.LayerTar(fixture.Layer{fixture.File("etc/first.conf", "x", 0o644), fixture.RandomFile("etc/big", 64<<10, 1)}))[:3000]
	src := writeSave(t, "c.json", []string{"a/layer.tar", "b/layer.tar"},
		member{"c.json", `{"rootfs":{"type":"layers","diff_ids":[]}}`}, member{"a/layer.tar", broken}, member{"b/layer.tar", good})
	for _, script := range []bool{true, false} {
		args := []string{"--log-format", "json", "search", "tar://" + src, "*.conf"}
		if script {
			args = append(args[:2], "search", "--script-friendly", "tar://"+src, "*.conf")
		}
		code, stdout, stderr := occystrap(t, args...)
		if code != 1 || !strings.Contains(stderr, "layer 0 (a)") || !strings.Contains(stderr, "not a readable tar") {
			t.Errorf("script %v: exit %d, want 1 naming layer 0; stderr:\n%s", script, code, stderr)
		}
		for _, want := range []string{"etc/first.conf", "etc/good.conf"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("script %v: %s not printed before the error; stdout:\n%s", script, want, stdout)
			}
		}
	}
}

// TestNamesPrintedQuoted (issue 10, class 10): names and config strings
// with escape sequences and newlines reach search's and info's output
// escaped: no control character, no forged line.
func TestNamesPrintedQuoted(t *testing.T) {
	layer := string(fixture.LayerTar(fixture.Layer{
		fixture.File("etc/\x1b[2J\x1b[31mred.conf", "x", 0o644),
		fixture.File("etc/x.conf\ny/app:v1:a:etc/forged.conf", "x", 0o644),
	}))
	cfg := `{"architecture":"amd64","os":"linux","config":{"Labels":{"evil\u001b]0;pwned\u0007":"\u001b[2Jcleared"},"Env":["A=1\nForged: line"],"WorkingDir":"/\u001b[31m"},"rootfs":{"type":"layers","diff_ids":[]}}`
	src := writeSave(t, "c.json", []string{"a/layer.tar"}, member{"c.json", cfg}, member{"a/layer.tar", layer})
	runs := [][]string{
		{"search", "--script-friendly", "tar://" + src, "*.conf"},
		{"search", "tar://" + src, "*.conf"},
		{"info", "tar://" + src},
	}
	for _, args := range runs {
		stdout, _ := mustRun(t, append([]string{"--log-format", "json"}, args...)...)
		if i := strings.IndexFunc(stdout, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }); i >= 0 {
			t.Errorf("%s: control character %q in the output:\n%s", args[0], stdout[i], stdout)
		}
		if strings.Contains(stdout, "\netc/forged") || strings.Contains(stdout, "\ny/app:v1:a:etc/forged") || strings.Contains(stdout, "\nForged: line") {
			t.Errorf("%s: a name forged an output line:\n%s", args[0], stdout)
		}
	}
}

// cli starts the CLI in a process of its own (runMainEnv: this test
// binary runs the command line), so that it can be killed as a user's is.
func cli(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// checkTrusted fails the test when a final name in base holds something a
// consumer would trust but should not: an archive that is not the complete
// one, a layer.tar whose sha256 is not its name, a manifest or catalog
// naming what is not there.
func checkTrusted(t *testing.T, base string, wantTar []byte) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(base, "out.tar")); err == nil && !bytes.Equal(b, wantTar) {
		t.Errorf("out.tar exists but is not the complete archive (%d bytes, want %d)", len(b), len(wantTar))
	}
	for _, d := range []string{"dir", "expand"} {
		out := filepath.Join(base, d)
		layers, _ := filepath.Glob(filepath.Join(out, "*", "layer.tar"))
		for _, l := range layers {
			b, err := os.ReadFile(l)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := digest.FromBytes(b).Encoded(), filepath.Base(filepath.Dir(l)); got != want {
				t.Errorf("%s holds content of sha256 %s", l, got)
			}
		}
		var cat map[string]map[string]string
		if b, err := os.ReadFile(filepath.Join(out, "catalog.json")); err == nil {
			if err := json.Unmarshal(b, &cat); err != nil {
				t.Errorf("catalog.json is not JSON: %v", err)
			}
		}
		for _, tags := range cat {
			for _, m := range tags {
				if _, err := os.Stat(filepath.Join(out, m)); err != nil {
					t.Errorf("catalog names %s: %v", m, err)
				}
			}
		}
		manifests, _ := filepath.Glob(filepath.Join(out, "manifest*.json"))
		for _, m := range manifests {
			var entries []fixture.ManifestEntry
			b, _ := os.ReadFile(m)
			if err := json.Unmarshal(b, &entries); err != nil || len(entries) != 1 || len(entries[0].Layers) != 4 {
				t.Errorf("%s is not a complete manifest: %s", m, b)
				continue
			}
			for _, p := range append(entries[0].Layers, entries[0].Config) {
				if _, err := os.Stat(filepath.Join(out, p)); err != nil {
					t.Errorf("%s names %s: %v", m, p, err)
				}
			}
		}
	}
}

// leftovers lists our temporaries under base and in tmp.
func leftovers(t *testing.T, base, tmp string) []string {
	t.Helper()
	var found []string
	for _, d := range []string{base, tmp} {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && (strings.HasPrefix(e.Name(), ".occystrap-tmp-") || strings.HasPrefix(e.Name(), "occystrap-")) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// TestKilledRunsLeaveNothingTrusted kills runs (SIGKILL mostly, SIGTERM and
// SIGINT too) at random points while they write dir://, dir://?expand and
// tar:// outputs with a layer-rewriting filter (spool files in the
// temporary directory). After every kill no final name holds anything
// incomplete; a rerun then succeeds and leaves no temporary of ours, the
// killed runs' included.
func TestKilledRunsLeaveNothingTrusted(t *testing.T) {
	img := fixture.Image{Name: "fixture/app", Tag: "v1"}
	for i := range 4 {
		img.Layers = append(img.Layers, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data/%d", i), 2<<20, uint64(i+1))})
	}
	src := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.WriteLegacyArchive(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tmp := t.TempDir()
	args := func(base string) [][]string {
		common := []string{"--log-format", "json", "--temp-dir", tmp, "-j", "4", "process", "-f", "normalize-timestamps:ts=0", "tar://" + src}
		return [][]string{
			append(append([]string{}, common...), "dir://"+filepath.Join(base, "dir")),
			append(append([]string{}, common...), "dir://"+filepath.Join(base, "expand")+"?expand=true&unique_names=true"),
			append(append([]string{}, common...), "tar://"+filepath.Join(base, "out.tar")),
		}
	}
	// A complete run first: the archive to compare with, and how long a run
	// takes, to spread the kills over it.
	ref := t.TempDir()
	start := time.Now()
	for _, a := range args(ref) {
		cmd := cli(t, a...)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("reference run %v: %v", a, err)
		}
	}
	span := time.Since(start) / 3
	wantTar, err := os.ReadFile(filepath.Join(ref, "out.tar"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 10))
	signals := []os.Signal{syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT}
	base := t.TempDir()
	killed := 0
	for round := range 6 {
		for _, a := range args(base) {
			cmd := cli(t, a...)
			time.Sleep(time.Duration(rng.Int64N(int64(span) + 1)))
			if err := cmd.Process.Signal(signals[rng.IntN(len(signals))]); err == nil {
				killed++
			}
			_ = cmd.Wait()
			checkTrusted(t, base, wantTar)
			if t.Failed() {
				t.Fatalf("round %d, after %v", round, a)
			}
		}
	}
	t.Logf("%d runs signalled at up to %v", killed, span)
	// A rerun finishes every output and removes what the killed runs left.
	for _, a := range args(base) {
		if out, errs := mustRun(t, a...); out != "" && errs == "" {
			t.Log(out)
		}
	}
	checkTrusted(t, base, wantTar)
	if got, err := os.ReadFile(filepath.Join(base, "out.tar")); err != nil || !bytes.Equal(got, wantTar) {
		t.Errorf("the rerun did not write the complete archive (%v)", err)
	}
	if left := leftovers(t, base, tmp); len(left) > 0 {
		t.Errorf("temporaries left after a rerun: %v", left)
	}
}
