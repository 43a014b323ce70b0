package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func TestDirAndTarOutputOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		dest    string
		wantErr string
	}{
		{dest: "dir://" + dir + "/a?unique_names=true&expand=yes"},
		{dest: "directory:" + dir + "/b"},
		{dest: "dir://" + dir + "/c?uniqe_names=true", wantErr: `unknown option "uniqe_names" for dir:// (known: unique_names, expand)`},
		{dest: "dir://" + dir + "/d?expand=maybe", wantErr: "expected true/false"},
		{dest: "tar://" + dir + "/e.tar"},
		{dest: "file://" + dir + "/f.tar?x=1&y=2", wantErr: `unknown options "x", "y" for tar:// (known: none)`},
		{dest: "tar://" + filepath.Join(dir, "missing", "g.tar"), wantErr: "no such file or directory"},
	}
	a := &app{g: &Globals{Parallel: 2}}
	for _, tc := range tests {
		out, _, err := openOutput(context.Background(), a, tc.dest)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("open %s = %v, want an error containing %q", tc.dest, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("open %s: %v", tc.dest, err)
			continue
		}
		if _, ok := out.(stage.Verifier); !ok {
			t.Errorf("output of %s cannot verify", tc.dest)
		}
		if err := out.Close(); err != nil {
			t.Errorf("close %s: %v", tc.dest, err)
		}
	}
}

func TestKnownOptions(t *testing.T) {
	t.Parallel()
	u, err := uri.ParseOutput("dir://x?expand=1")
	if err != nil {
		t.Fatal(err)
	}
	if err := knownOptions(u, "unique_names", "expand"); err != nil {
		t.Errorf("knownOptions refused a known option: %v", err)
	}
}
