package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The command-line tests run the real binary, built once per test process
// from this package, as a user runs it.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// binary returns the path of an occystrap built from this package.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "occystrap-bin-")
		if binErr != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		binPath = filepath.Join(binDir, "occystrap")
		cmd := exec.Command(goBin, "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// binRun runs the binary with env added to this process's environment
// (minus the OCCYSTRAP_ ones, so the developer's settings do not leak in)
// and returns its exit code, stdout and stderr.
func binRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("occystrap %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

// binMust is binRun that fails the test on a non-zero exit.
func binMust(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	code, out, errs := binRun(t, env, args...)
	if code != 0 {
		t.Fatalf("occystrap %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OCCYSTRAP_") && !strings.HasPrefix(kv, "OCCYSTRAP_TEST_") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// removeBinary removes the binary built for the tests (TestMain calls it).
func removeBinary() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}
