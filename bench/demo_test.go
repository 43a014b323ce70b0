package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sgr is a colour (Select Graphic Rendition) escape sequence.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestDemoReruns runs the README's first command twice into the same
// folder, as a new user would, and checks that the second run replaces the
// first's result, that a folder the demo did not make is refused without
// --force, and that nothing is coloured when the output is not a terminal.
func TestDemoReruns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds occystrap and runs the demo twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "demo")
	d := &DemoCmd{Common: Common{Preset: "small", Images: 2, Latency: time.Millisecond, CorpusDir: t.TempDir()}, Out: out}
	for i := 1; i <= 2; i++ {
		var stdout, log bytes.Buffer
		if err := d.run(ctx, &stdout, &log); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, log.String())
		}
		if loc := sgr.FindStringIndex(log.String()); loc != nil {
			t.Errorf("run %d: colour codes in redirected output: %q", i, log.String()[loc[0]:min(loc[1]+40, log.Len())])
		}
		if !strings.Contains(log.String(), "Summary: 2/2 images") {
			t.Errorf("run %d: no summary of 2 images:\n%s", i, log.String())
		}
		if _, err := os.Stat(filepath.Join(out, "catalog.json")); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}

	foreign := filepath.Join(t.TempDir(), "mine")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(foreign, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := clearDemoOut(foreign, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("a folder the demo did not make: %v, want a refusal naming --force", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("refused folder was touched: %v", err)
	}
	if err := clearDemoOut(foreign, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(foreign); !os.IsNotExist(err) {
		t.Errorf("--force left %s: %v", foreign, err)
	}
}
