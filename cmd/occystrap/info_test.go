package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage/stagetest"

	"github.com/google/go-cmp/cmp"
)

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if stagetest.Updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, d)
	}
}

func TestInfoTar(t *testing.T) {
	for _, tc := range []struct {
		name   string
		oci    bool
		format string
	}{
		{"legacy-text", false, "text"},
		{"legacy-json", false, "json"},
		{"oci-text", true, "text"},
		{"oci-json", true, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeArchive(t, tc.oci)
			code, out, stderr := runCLI("-O", tc.format, "info", "tar://"+path)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, "info-tar-"+tc.name+".golden", []byte(out))
		})
	}
}

func TestCheckTar(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"full-text", nil, 0},
		{"full-json", []string{"-O", "json"}, 0},
		{"fast-text", []string{"--fast"}, 0},
		{"fast-json", []string{"-O", "json", "--fast"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeArchive(t, false)
			args := []string{"check", "tar://" + path}
			for _, a := range tc.args {
				if a == "-O" || a == "json" {
					args = append([]string{a}, args...)
				} else {
					args = append(args, a)
				}
			}
			if tc.args != nil && tc.args[0] == "-O" {
				args = append([]string{"-O", "json"}, args[2:]...)
			}
			code, out, stderr := runCLI(args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			golden(t, "check-tar-"+tc.name+".golden", []byte(out))
		})
	}
}

func TestCheckExitCodes(t *testing.T) {
	code, _, stderr := runCLI("check", "quay://kolla/*:latest")
	if code != 1 || !strings.Contains(stderr, "Error: Unknown input scheme: quay") {
		t.Errorf("quay: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI("check", "tar:///nonexistent.tar")
	if code != 1 || !strings.Contains(stderr, "Error:") {
		t.Errorf("missing archive: exit %d, stderr %q", code, stderr)
	}
}

func TestCheckErrorsExit1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	img := fixture.Image{Name: "bad/img", Tag: "v1", Layers: []fixture.Layer{{fixture.File("old", "x", 0o644).WithMtime(time.Unix(-5, 0))}}}
	if _, err := fixture.WriteLegacyArchive(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, stderr := runCLI("check", "tar://"+path)
	if code != 1 || strings.Contains(stderr, "Error:") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(out, "  [tar-timestamp] Layer 0: negative timestamp on old (mtime=-5)\n") ||
		!strings.HasSuffix(out, "Check complete (full): 1 error(s), 0 warning(s)\n") {
		t.Errorf("output:\n%s", out)
	}
	// --fast reads no layer: no error.
	if code, _, stderr := runCLI("check", "--fast", "tar://"+path); code != 0 {
		t.Errorf("--fast: exit %d: %s", code, stderr)
	}
}
