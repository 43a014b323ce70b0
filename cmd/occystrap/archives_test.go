package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// Archives of every layout people's tools write, made by the tools
// themselves from one small image (archiveImage) in a test registry: docker
// save, crane pull (its default tarball layout and --format legacy), skopeo
// copy to docker-archive: and oci-archive:, regctl image export, and a
// docker-archive gzipped and zstd-compressed as a whole. TestArchivesFromTools
// makes them afresh (CI installs every tool, so it runs there) and, with
// -update-archives, copies them into testdata/archives; TestArchiveLayouts
// runs the same checks on those byte-exact copies, so they run without the
// tools too.

var updateArchives = flag.Bool("update-archives", false, "rewrite testdata/archives from the real tools")

const archivesDir = "testdata/archives"

// archiveImage is the image every archive holds: two small gzip layers
// (random content, so each archive stays a few KiB).
func archiveImage(t *testing.T) testregistry.Image {
	t.Helper()
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 77, Layers: 2, LayerSize: 1536})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// archiveKind is one layout and the tool command that writes it.
type archiveKind struct {
	file string
	// flat: the layout gives layers no name of the original's rule, so
	// they are named by DiffID.
	flat bool
	// name is the image name the archive records ("" = unknown).
	name string
	make func(t *testing.T, tools *archiveTools, ref, out string)
}

type archiveTools struct {
	reg      *testregistry.Registry
	regctlCf string // regctl's config file (plain HTTP to the test registry)
}

func (at *archiveTools) run(t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

var archiveKinds = []archiveKind{
	{"crane-tarball.tar", true, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		at.run(t, nil, testenv.Crane(t), "pull", "--insecure", ref, out)
	}},
	{"crane-legacy.tar", false, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		at.run(t, nil, testenv.Crane(t), "pull", "--insecure", "--format", "legacy", ref, out)
	}},
	{"skopeo-docker-archive.tar", true, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		at.run(t, nil, testenv.Skopeo(t), "copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+out+":fixture/app:v1")
	}},
	{"skopeo-oci-archive.tar", false, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		at.run(t, nil, testenv.Skopeo(t), "copy", "--src-tls-verify=false", "docker://"+ref, "oci-archive:"+out+":fixture/app:v1")
	}},
	{"regctl-export.tar", false, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		bin := testenv.Regctl(t)
		env := []string{"REGCTL_CONFIG=" + at.regctlCf}
		at.run(t, env, bin, "registry", "set", "--tls", "disabled", at.reg.Host)
		at.run(t, env, bin, "image", "export", "--name", "fixture/app:v1", ref, out)
	}},
	{"docker-save.tar", false, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		// The engine cannot pull from the test registry (plain HTTP, not
		// configured as insecure): load crane's legacy archive, then save.
		eng := testdocker.Require(t)
		ctx := context.Background()
		legacy := filepath.Join(t.TempDir(), "legacy.tar")
		at.run(t, nil, testenv.Crane(t), "pull", "--insecure", "--format", "legacy", ref, legacy)
		_ = eng.Remove(ctx, "fixture/app:v1")
		if msg, err := eng.Load(ctx, legacy); err != nil {
			t.Fatalf("docker load: %v (%s)", err, msg)
		}
		defer eng.Remove(ctx, ref)
		defer eng.Remove(ctx, "fixture/app:v1")
		c := dockerclient.New(eng.Socket)
		defer c.CloseIdle()
		if err := c.Tag(ctx, ref, "fixture/app", "v1"); err != nil {
			t.Fatal(err)
		}
		rc, err := c.Save(ctx, "fixture/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		writeFileFrom(t, out, rc)
	}},
	{"skopeo-docker-archive.tar.gz", true, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		plain := filepath.Join(t.TempDir(), "a.tar")
		at.run(t, nil, testenv.Skopeo(t), "copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+plain+":fixture/app:v1")
		at.run(t, nil, "gzip", "-n", "-k", plain)
		if err := os.Rename(plain+".gz", out); err != nil {
			t.Fatal(err)
		}
	}},
	{"crane-legacy.tar.zst", false, "fixture/app:v1", func(t *testing.T, at *archiveTools, ref, out string) {
		plain := filepath.Join(t.TempDir(), "a.tar")
		at.run(t, nil, testenv.Crane(t), "pull", "--insecure", "--format", "legacy", ref, plain)
		b, err := os.ReadFile(plain)
		if err != nil {
			t.Fatal(err)
		}
		zw, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, zw.EncodeAll(b, nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}},
}

func writeFileFrom(t *testing.T, path string, r io.Reader) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestArchivesFromTools makes every archive with its real tool and checks
// it through every output; in CI no tool may be missing.
func TestArchivesFromTools(t *testing.T) {
	img := archiveImage(t)
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	if err := src.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	at := &archiveTools{reg: src, regctlCf: filepath.Join(t.TempDir(), "regctl.json")}
	dst := testregistry.Start(t, testregistry.Options{Plain: true})
	for _, k := range archiveKinds {
		t.Run(k.file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), k.file)
			k.make(t, at, src.Host+"/fixture/app:v1", out)
			if *updateArchives {
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(archivesDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(archivesDir, k.file), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			checkArchive(t, img, k, out, dst, true)
		})
	}
}

// TestArchiveLayouts runs the checks on the checked-in copies.
func TestArchiveLayouts(t *testing.T) {
	img := archiveImage(t)
	dst := testregistry.Start(t, testregistry.Options{Plain: true})
	for _, k := range archiveKinds {
		t.Run(k.file, func(t *testing.T) {
			p := filepath.Join(archivesDir, k.file)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%v (make it with go test ./cmd/occystrap -run TestArchivesFromTools -update-archives)", err)
			}
			checkArchive(t, img, k, p, dst, false)
		})
	}
}

// checkArchive processes the archive into dir://, dir://?expand=true,
// tar://, oci:// and registry://, and checks each: every layer's sha256 is
// the config's DiffID, the config is the image's, layers are named by the
// rule (the original's where it gives a name, else the DiffID's hex).
// With tools, the tar:// output is also loaded by docker and the pushed
// image validated by crane.
func checkArchive(t *testing.T, img testregistry.Image, k archiveKind, archive string, dst *testregistry.Registry, tools bool) {
	t.Helper()
	var want []digest.Digest
	for _, l := range img.Layers {
		want = append(want, l.DiffID)
	}
	base := t.TempDir()
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		_, stderr := mustRun(t, append([]string{"--log-format", "json", "--insecure", "--temp-dir", tmp}, args...)...)
		if !strings.Contains(stderr, "verified OK") {
			t.Errorf("%v: no verified OK:\n%s", args, stderr)
		}
		return stderr
	}

	// info names the image.
	out, _ := mustRun(t, "-O", "json", "info", "tar://"+archive)
	var info struct{ Image, Tag, ConfigDigest string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info: %v\n%s", err, out)
	}
	// The tools record the whole reference (crane: the test registry's
	// host and port; skopeo and regctl: docker.io/...).
	if got := info.Image + ":" + info.Tag; !strings.HasSuffix(got, k.name) {
		t.Errorf("info names the image %s, want ...%s", got, k.name)
	}

	// check (full) finds nothing wrong; search names layers as dir:// does.
	if out, _ := mustRun(t, "check", "tar://"+archive); !strings.HasSuffix(out, "Check complete (full): 0 error(s), 0 warning(s)\n") {
		t.Errorf("check:\n%s", out)
	}
	searched, _ := mustRun(t, "search", "--script-friendly", "tar://"+archive, "*data.bin")

	// dir://
	dir := filepath.Join(base, "dir")
	run("process", "tar://"+archive, "dir://"+dir)
	cfgName, got := dirLayers(t, dir, "manifest.json")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dir:// layers' sha256 differ from the DiffIDs (-want +got):\n%s", d)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, cfgName))
	if err != nil || digest.FromBytes(cfg) != img.ConfigDigest {
		t.Errorf("dir:// config %s: %v, digest %s, want %s", cfgName, err, digest.FromBytes(cfg), img.ConfigDigest)
	}
	var m []struct{ Layers []string }
	readJSON(t, filepath.Join(dir, "manifest.json"), &m)
	for i, l := range m[0].Layers {
		name := strings.TrimSuffix(l, "/layer.tar")
		if name == "" || strings.Contains(name, "/") {
			t.Errorf("layer %d named %q", i, name)
		}
		if k.flat && name != want[i].Encoded() {
			t.Errorf("flat layout: layer %d named %q, want its DiffID's hex %s", i, name, want[i].Encoded())
		}
		if line := ":" + name + ":layer" + string(rune('0'+i)) + "/data.bin\n"; !strings.Contains(searched, line) {
			t.Errorf("search output lacks %q:\n%s", line, searched)
		}
	}

	// dir://?expand=true
	exp := filepath.Join(base, "exp")
	run("process", "tar://"+archive, "dir://"+exp+"?expand=true")
	for i := range want {
		if _, err := os.Stat(filepath.Join(exp, "manifest", "layer"+string(rune('0'+i)), "data.bin")); err != nil {
			t.Errorf("expand: %v", err)
		}
	}

	// tar://
	tarOut := filepath.Join(base, "out.tar")
	run("process", "tar://"+archive, "tar://"+tarOut)
	if d := cmp.Diff(want, tarLayers(t, tarOut)); d != "" {
		t.Errorf("tar:// layers' sha256 differ from the DiffIDs (-want +got):\n%s", d)
	}

	// oci://
	bundle := filepath.Join(base, "bundle")
	run("process", "tar://"+archive, "oci://"+bundle)
	for i := range want {
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", "layer"+string(rune('0'+i)), "data.bin")); err != nil {
			t.Errorf("oci: %v", err)
		}
	}

	// registry://
	repo := "archives/" + strings.NewReplacer(".", "-", "_", "-").Replace(k.file)
	if tools {
		repo += "-tools"
	}
	run("process", "tar://"+archive, "registry://"+dst.Host+"/"+repo+":v1")
	pulled := filepath.Join(base, "pulled")
	run("process", "registry://"+dst.Host+"/"+repo+":v1", "dir://"+pulled)
	if _, got := dirLayers(t, pulled, "manifest.json"); !cmp.Equal(want, got) {
		t.Errorf("pushed image's layers pulled back differ from the DiffIDs: %v", got)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("%d temporary files left in --temp-dir", len(entries))
	}
	if !tools {
		return
	}
	crane := testenv.Crane(t)
	if out, err := exec.Command(crane, "validate", "--insecure", "--remote", dst.Host+"/"+repo+":v1").CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("crane validate --remote: %v\n%s", err, out)
	}
	eng := testdocker.Require(t)
	ctx := context.Background()
	_ = eng.Remove(ctx, "app:v1")
	if msg, err := eng.Load(ctx, tarOut); err != nil {
		t.Fatalf("docker load of the tar:// output: %v (%s)", err, msg)
	}
	id, err := eng.ImageID(ctx, "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if id != img.ConfigDigest.String() {
		t.Errorf("docker loaded Id %s, want %s", id, img.ConfigDigest)
	}
	_ = eng.Remove(ctx, "app:v1")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestMultiPlatformArchive: an OCI archive holding a two-platform index
// (skopeo copy --all, and its checked-in copy): the platform is chosen as
// for a registry, and a missing one is named with those present.
func TestMultiPlatformArchive(t *testing.T) {
	const file = "skopeo-oci-archive-multi.tar"
	src := testregistry.Start(t, testregistry.Options{Plain: true})
	amd, arm, _ := twoPlatforms(t, src, true)
	archives := map[string]string{"testdata": filepath.Join(archivesDir, file)}
	t.Run("tool", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), file)
		at := &archiveTools{reg: src}
		at.run(t, nil, testenv.Skopeo(t), "copy", "--all", "--src-tls-verify=false", "docker://"+src.Host+"/multi/app:v1", "oci-archive:"+out+":multi/app:v1")
		if *updateArchives {
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(archives["testdata"], b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		checkMultiPlatform(t, out, amd, arm)
	})
	t.Run("testdata", func(t *testing.T) { checkMultiPlatform(t, archives["testdata"], amd, arm) })
}

func checkMultiPlatform(t *testing.T, archive string, amd, arm testregistry.Image) {
	t.Helper()
	for _, tc := range []struct {
		args []string
		want testregistry.Image
	}{
		{nil, amd},
		{[]string{"--platform", "linux/arm64"}, arm},
		{[]string{"--architecture", "arm64"}, arm},
	} {
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, append(append([]string{"--log-format", "json"}, tc.args...), "process", "tar://"+archive, "dir://"+out)...)
		cfg, got := dirLayers(t, out, "manifest.json")
		var want []digest.Digest
		for _, l := range tc.want.Layers {
			want = append(want, l.DiffID)
		}
		if cfg != "blobs/sha256/"+tc.want.ConfigDigest.Encoded() || !cmp.Equal(want, got) {
			t.Errorf("%v: config %s, layers %v; want %s, %v", tc.args, cfg, got, tc.want.ConfigDigest, want)
		}
	}
	code, _, stderr := occystrap(t, "--platform", "linux/s390x", "process", "tar://"+archive, "dir://"+t.TempDir())
	want := "Could not find a matching manifest for this os / architecture / variant: asked for linux/s390x; the index has linux/amd64, linux/arm64/v8, linux/amd64/v2"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("s390x: exit %d:\n%s\nwant %q", code, stderr, want)
	}
}
