package logging

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryEventDocumented: every event the code gives (the message of
// every .Msg("…") call, every explicit "event" field, and the names
// Printer's messages map to) is named in docs/logging.md.
func TestEveryEventDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	msgRe := regexp.MustCompile(`\.Msg\("([^"]*)"\)`)
	evRe := regexp.MustCompile(`Str\("event", "([a-z0-9_]+)"\)`)
	names := map[string]string{}
	for _, e := range events {
		names[e] = "internal/logging"
	}
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/internal/test") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// A message whose event chain sets "event" itself is named by it.
		prev := 0
		for _, m := range msgRe.FindAllStringSubmatchIndex(string(src), -1) {
			if !evRe.MatchString(string(src[prev:m[0]])) {
				names[EventName(string(src[m[2]:m[3]]))] = path
			}
			prev = m[1]
		}
		for _, m := range evRe.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("found only %d events: is the walk wrong?", len(names))
	}
	for name, where := range names {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("event %s (%s) is not in docs/logging.md", name, where)
		}
	}
}
