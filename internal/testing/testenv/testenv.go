// Package testenv holds checks that tests make of the machine they run on
// and of the tools they need.
// Outside CI a test whose needs are not met is skipped with the reason; in
// CI (CI set) it fails, so that nothing silently stops running there.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot needs the test to run as root (overlay mounts, trusted.*
// xattrs, device nodes). .ci/run runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (overlay mounts, trusted.* xattrs, mknod); CI runs as root")
	}
	t.Skip("needs root (overlay mounts, trusted.* xattrs, mknod); run as root, as CI does")
}

// Crane returns the path of the crane binary (PATH, then $(go env
// GOPATH)/bin). .ci/run installs it; without it a test is skipped outside CI
// and fails in CI.
func Crane(t testing.TB) string {
	t.Helper()
	return Tool(t, "crane", "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1")
}

// Regctl returns the path of regctl, as Crane does for crane.
func Regctl(t testing.TB) string {
	t.Helper()
	return Tool(t, "regctl", "go install github.com/regclient/regclient/cmd/regctl@v0.11.7")
}

// Skopeo returns the path of skopeo (Debian's package), as Crane does.
func Skopeo(t testing.TB) string {
	t.Helper()
	return Tool(t, "skopeo", "apt-get install skopeo")
}

// Tool returns the path of the binary name (PATH, then $(go env
// GOPATH)/bin); without it the test is skipped outside CI and fails in CI,
// with how to install it.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := name + " not found on PATH or in $(go env GOPATH)/bin: " + install
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Tmpfs mounts a tmpfs of size bytes on a fresh directory and returns it;
// the test's cleanup unmounts it. A write that does not fit fails with
// ENOSPC, as on a full disk. It needs root (see RequireRoot).
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Igzip returns the path of ISA-L's igzip (Debian's isal package, which
// .ci/run installs); without it a test is skipped outside CI and fails in CI.
func Igzip(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("igzip"); err == nil {
		return p
	}
	const msg = "igzip not found on PATH: apt-get install isal"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
