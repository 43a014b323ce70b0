package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
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
