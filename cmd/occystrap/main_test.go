package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// childEnv, when set, makes the test binary run the CLI instead of the
// tests: its value is a JSON object {"umask": "022", "args": [...]}. Tests
// that need a process of their own (another umask, another user) run the
// CLI this way, with no separate build.
const childEnv = "OCCYSTRAP_TEST_CLI_CHILD"

type childSpec struct {
	Umask string   `json:"umask"`
	Args  []string `json:"args"`
}

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if v := os.Getenv(childEnv); v != "" {
		var spec childSpec
		if err := json.Unmarshal([]byte(v), &spec); err != nil {
			os.Stderr.WriteString("bad " + childEnv + ": " + err.Error() + "\n")
			os.Exit(3)
		}
		if spec.Umask != "" {
			n, err := strconv.ParseUint(spec.Umask, 8, 32)
			if err != nil {
				os.Stderr.WriteString("bad umask: " + err.Error() + "\n")
				os.Exit(3)
			}
			syscall.Umask(int(n))
		}
		os.Exit(run(spec.Args, os.Stdout, os.Stderr))
	}
	code := m.Run()
	removeBinary()
	os.Exit(code)
}

// child is how a CLI child process runs.
type child struct {
	umask string              // octal; empty keeps the test's
	cred  *syscall.Credential // run as this user (the test is root)
	env   []string            // added to the environment
	stdin io.Reader           // nil: none
}

// runChild runs the CLI in a process of its own and returns its exit code,
// stdout and stderr.
func runChild(t *testing.T, c child, args ...string) (int, string, string) {
	t.Helper()
	spec, err := json.Marshal(childSpec{Umask: c.umask, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	bin := testBinary(t, c.cred != nil)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(spec)), c.env...)
	cmd.Stdin = c.stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Dir = "/"
	}
	err = cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run the CLI child: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// testBinary is this test binary; for another user, a copy every user can
// run (go test builds in a directory only its user can enter).
func testBinary(t *testing.T, shared bool) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !shared {
		return self
	}
	dir := sharedTempDir(t)
	dst := filepath.Join(dir, "occystrap.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// sharedTempDir is a temporary directory every user may read and write
// (t.TempDir's parent is private to the test's user), removed afterwards.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "occystrap-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nobody is the credential of the unprivileged user tests drop to when root.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

func mustChild(t *testing.T, c child, args ...string) (string, string) {
	t.Helper()
	code, out, errs := runChild(t, c, args...)
	if code != 0 {
		t.Fatalf("occystrap %s (umask %s): exit %d\nstderr:\n%s", strings.Join(args, " "), c.umask, code, errs)
	}
	return out, errs
}
