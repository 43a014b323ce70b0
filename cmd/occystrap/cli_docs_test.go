package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/stage/stagetest"
	"github.com/occystrap/occystrap/stage/uri"
)

// model is the command line's kong model, built as run builds it.
func model(t *testing.T) *kong.Kong {
	t.Helper()
	var cli CLI
	k, err := newParser(&cli, io.Discard, io.Discard, func(int) { t.Fatal("exit while parsing") })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestManPage: docs/occystrap.1 is what the binary generates from its
// model, so a flag or command added without regenerating fails here.
func TestManPage(t *testing.T) {
	got, _ := binMust(t, nil, "man")
	path := filepath.Join("..", "..", "docs", "occystrap.1")
	if stagetest.Updating() { // -update
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("docs/occystrap.1 is stale; regenerate with: go test ./cmd/occystrap -run TestManPage -update\n(-file +generated):\n%s", d)
	}
	k := model(t)
	for _, c := range commands(k.Model) {
		if !strings.Contains(got, `.SS "occystrap `+roff(c.Name)) {
			t.Errorf("man page has no section for %s", c.Name)
		}
	}
	for _, f := range visibleFlags(k.Model.Flags) {
		if !strings.Contains(got, roff("--"+f.Name)) {
			t.Errorf("man page does not describe --%s", f.Name)
		}
	}
	if man, err := exec.LookPath("man"); err == nil {
		out, err := exec.Command(man, "-l", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "GLOBAL FLAGS") {
			t.Errorf("man -l %s: %v\n%s", path, err, out)
		}
	}
}

// TestCommandHelp: every command's help (help CMD and CMD --help alike)
// gives its usage, two examples before anything else, its own flags, and
// the global flags last; process lists the schemes with their options and
// the filters.
func TestCommandHelp(t *testing.T) {
	k := model(t)
	for _, c := range commands(k.Model) {
		t.Run(c.Name, func(t *testing.T) {
			if len(examples[c.Name]) < 2 {
				t.Fatalf("%s has %d examples, want 2 at least (clidocs.go)", c.Name, len(examples[c.Name]))
			}
			out, _ := binMust(t, nil, c.Name, "--help")
			viaHelp, _ := binMust(t, nil, "help", c.Name)
			if out != viaHelp {
				t.Errorf("help %s differs from %s --help", c.Name, c.Name)
			}
			if !strings.HasPrefix(out, "Usage: occystrap "+c.Name) {
				t.Errorf("no usage line first:\n%s", out)
			}
			ex := strings.Index(out, "Examples:")
			own := strings.Index(out, "\nFlags:")
			global := strings.Index(out, "Global flags")
			if ex < 0 || global < 0 || ex > global || own >= 0 && (own < ex || own > global) {
				t.Errorf("want Examples, then Flags, then Global flags:\n%s", out)
			}
			for _, e := range examples[c.Name][:2] {
				if i := strings.Index(out, e.Line); i < 0 || i > global {
					t.Errorf("example %q missing or after the global flags", e.Line)
				}
			}
			for _, f := range visibleFlags(c.Flags) {
				if i := strings.Index(out, "--"+f.Name); i < 0 || i > global {
					t.Errorf("own flag --%s missing or after the global flags", f.Name)
				}
			}
		})
	}
	out, _ := binMust(t, nil, "process", "--help")
	for _, d := range append(slices.Clone(inputDocs), outputDocs...) {
		if !strings.Contains(out, d.Form) {
			t.Errorf("process --help lacks %s", d.Form)
		}
		for _, o := range strings.Split(d.Options, ", ") {
			if o == "" {
				continue
			}
			if !strings.Contains(out, strings.Fields(o)[0]) {
				t.Errorf("process --help lacks option %s of %s", o, d.Scheme)
			}
		}
	}
	for _, f := range filterDocs {
		if !strings.Contains(out, f.Form) {
			t.Errorf("process --help lacks filter %s", f.Form)
		}
	}
	code, _, errs := binRun(t, nil, "help", "nosuch")
	if code != 2 || !strings.Contains(errs, "nosuch") {
		t.Errorf("help nosuch: exit %d\n%s", code, errs)
	}
	top, _ := binMust(t, nil, "help")
	for _, c := range commands(k.Model) {
		if !strings.Contains(top, "  "+c.Name+" ") {
			t.Errorf("help lacks command %s:\n%s", c.Name, top)
		}
	}
}

// TestExamplesParse: every example is a command line this binary accepts.
func TestExamplesParse(t *testing.T) {
	for name, exs := range examples {
		for _, e := range exs {
			args, ok := exampleArgs(e.Line)
			if slices.Contains(args, "--help") {
				continue // it exits; TestCommandHelp runs it
			}
			if !ok {
				t.Errorf("%s example %q does not run occystrap", name, e.Line)
				continue
			}
			if _, err := model(t).Parse(args); err != nil {
				t.Errorf("%s example %q: %v", name, e.Line, err)
			}
			if i := slices.IndexFunc(args, func(a string) bool { return !strings.HasPrefix(a, "-") }); i < 0 {
				t.Errorf("%s example %q has no command", name, e.Line)
			}
		}
	}
}

// exampleArgs is the arguments of the occystrap command in a shell line.
func exampleArgs(line string) ([]string, bool) {
	_, rest, ok := strings.Cut(line, "occystrap ")
	if !ok {
		return nil, false
	}
	var args []string
	var cur strings.Builder
	quoted, in := false, false
	for _, r := range rest {
		switch {
		case r == '\'':
			quoted = !quoted
			in = true
		case !quoted && (r == '|' || r == '>' || r == ')'):
			if in {
				args = append(args, cur.String())
			}
			return args, true
		case !quoted && r == ' ':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args, true
}

// TestSchemesDocumented: every scheme and filter this build registers is
// described for help and the man page, and nothing else is.
func TestSchemesDocumented(t *testing.T) {
	check := func(what string, registered []string, documented []string) {
		slices.Sort(registered)
		slices.Sort(documented)
		if d := cmp.Diff(registered, documented); d != "" {
			t.Errorf("%s registered vs documented in clidocs.go (-registered +documented):\n%s", what, d)
		}
	}
	var in, out, fl, din, dout, dfl []string
	for k := range inputs {
		in = append(in, k)
	}
	in = append(in, "quay") // resolved by process itself
	for k := range outputs {
		out = append(out, k)
	}
	for k := range filters {
		fl = append(fl, k)
	}
	for _, d := range inputDocs {
		din = append(din, d.Scheme)
	}
	for _, d := range outputDocs {
		dout = append(dout, d.Scheme)
	}
	for _, d := range filterDocs {
		dfl = append(dfl, d.Name)
	}
	check("inputs", in, din)
	check("outputs", out, dout)
	check("filters", fl, dfl)
	if !slices.Equal(uri.InputSchemes, []string{"registry", "quay", "docker", "dockerpush", "tar"}) {
		t.Errorf("input schemes changed: %v; update clidocs.go", uri.InputSchemes)
	}
}
