// Package testenv holds checks that tests make of the machine they run on.
// Outside CI a test whose needs are not met is skipped with the reason; in
// CI (CI set) it fails, so that nothing silently stops running there.
package testenv

import (
	"os"
	"testing"
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
