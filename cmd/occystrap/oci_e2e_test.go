package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// tar:// into oci:// and mounts:// (needs root for mounts://, as the output
// does; every overlay mounted here is unmounted at cleanup).

func TestProcessTarToOCI(t *testing.T) {
	for _, oci := range []bool{false, true} {
		t.Run(map[bool]string{false: "legacy", true: "oci-gzip"}[oci], func(t *testing.T) {
			src, a := writeArchive(t, oci)
			out := filepath.Join(t.TempDir(), "bundle")
			_, stderr := mustRun(t, "--log-format", "console", "process", "tar://"+src, "oci://"+out)
			if !summaryRE.MatchString(stderr) {
				t.Errorf("no summary line with verified OK in stderr:\n%s", stderr)
			}
			var top []string
			entries, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				top = append(top, e.Name())
			}
			if d := cmp.Diff([]string{"config.json", "container-config.json", "rootfs"}, top); d != "" {
				t.Errorf("bundle (-want +got):\n%s", d)
			}
			stagetest.Golden(t, "oci-rootfs", stagetest.Listing(t, filepath.Join(out, "rootfs")))
			if cfg, err := os.ReadFile(filepath.Join(out, "container-config.json")); err != nil || string(cfg) != string(a.Config) {
				t.Errorf("container-config.json is not the image's config (%v)", err)
			}
			var spec struct {
				OCIVersion string `json:"ociVersion"`
				Hostname   string `json:"hostname"`
				Process    struct {
					Args     []string `json:"args"`
					Cwd      string   `json:"cwd"`
					Terminal bool     `json:"terminal"`
				} `json:"process"`
				Root struct {
					Path     string `json:"path"`
					Readonly bool   `json:"readonly"`
				} `json:"root"`
			}
			stagetest.ReadJSON(t, filepath.Join(out, "config.json"), &spec)
			if spec.OCIVersion != "1.0.2-dev" || spec.Hostname != "occystrap" || spec.Process.Cwd != "/" ||
				!cmp.Equal(spec.Process.Args, []string{"/bin/sh"}) || spec.Process.Terminal ||
				spec.Root.Path != "rootfs" || !spec.Root.Readonly {
				t.Errorf("config.json: %+v", spec)
			}
		})
	}
}

func TestProcessTarToOCIRefusesEscapes(t *testing.T) {
	parent := t.TempDir()
	src := filepath.Join(parent, "evil.tar")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	img := appImage()
	img.Layers = append(img.Layers, fixture.MaliciousLayer())
	if _, err := fixture.WriteLegacyArchive(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(parent, "out", "bundle")
	code, _, stderr := occystrap(t, "--log-format", "console", "process", "tar://"+src, "oci://"+out)
	if code != 1 || !strings.Contains(stderr, "outside the target directory") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming the unsafe entry", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("bundle directory left behind (%v)", err)
	}
	for _, p := range []string{"evil", "abs", "x"} {
		if _, err := os.Stat(filepath.Join(parent, "out", p)); !os.IsNotExist(err) {
			t.Errorf("%s written outside the bundle", p)
		}
	}
}

func TestProcessTarToMounts(t *testing.T) {
	testenv.RequireRoot(t)
	src, a := writeArchive(t, false)
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustRun(t, "--log-format", "console", "process", "tar://"+src, "oci://"+bundle)

	out := filepath.Join(t.TempDir(), "mounts")
	rootfs := filepath.Join(out, "rootfs")
	t.Cleanup(func() {
		for unix.Unmount(rootfs, 0) == nil {
		}
	})
	_, stderr := mustRun(t, "--log-format", "console", "process", "tar://"+src, "mounts://"+out)
	if !summaryRE.MatchString(stderr) {
		t.Errorf("no summary line with verified OK in stderr:\n%s", stderr)
	}
	for _, n := range a.LayerNames {
		if fi, err := os.Stat(filepath.Join(out, n, "layer")); err != nil || !fi.IsDir() {
			t.Errorf("layer %s: no tree (%v)", n, err)
		}
	}
	// The second layer whites out opt/app/old.conf and makes var/cache opaque.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, a.LayerNames[1], "layer/opt/app/old.conf"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("opt/app/old.conf in layer 1 is not a 0:0 character device (%v, mode %o)", err, st.Mode)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(out, a.LayerNames[1], "layer/var/cache"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("var/cache in layer 1 is not opaque (%v)", err)
	}
	if d := cmp.Diff(stagetest.Listing(t, filepath.Join(bundle, "rootfs")), stagetest.Listing(t, rootfs)); d != "" {
		t.Errorf("overlay view differs from the oci:// rootfs (-oci +mounts):\n%s", d)
	}
	code, _, stderr := occystrap(t, "--log-format", "console", "process", "tar://"+src, "mounts://"+out)
	if code != 1 || !strings.Contains(stderr, "rootfs is already mounted") {
		t.Errorf("rerun while mounted: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestOCIAndMountsRefuseOptions(t *testing.T) {
	src, _ := writeArchive(t, false)
	for _, scheme := range []string{"oci", "mounts"} {
		out := filepath.Join(t.TempDir(), "x")
		code, _, stderr := occystrap(t, "process", "tar://"+src, scheme+"://"+out+"?expand=true")
		if code != 2 || !strings.Contains(stderr, `unknown option "expand" for `+scheme+"://") {
			t.Errorf("%s: exit %d, stderr:\n%s", scheme, code, stderr)
		}
	}
}
