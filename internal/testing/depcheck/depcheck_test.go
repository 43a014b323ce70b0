package depcheck

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/occystrap/occystrap"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs go list on every package of the module, tests excluded.
func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

func under(path, dir string) bool {
	p := module + "/" + dir
	return path == p || strings.HasPrefix(path, p+"/")
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func TestInternalPackagesAreLeaves(t *testing.T) {
	n := 0
	for _, p := range list(t) {
		if !under(p.ImportPath, "internal") || under(p.ImportPath, "internal/testing") {
			continue
		}
		n++
		for _, imp := range p.Imports {
			if ours(imp) {
				t.Errorf("%s imports %s: a package under internal/ must import nothing of this module", p.ImportPath, imp)
			}
		}
	}
	if n == 0 {
		t.Fatal("no package under internal/ checked")
	}
}

func TestNothingDependsOnCmd(t *testing.T) {
	for _, p := range list(t) {
		if under(p.ImportPath, "cmd") || under(p.ImportPath, "bench") {
			continue
		}
		for _, d := range p.Deps {
			if under(d, "cmd") {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
}

func TestStageIsTheContract(t *testing.T) {
	for _, p := range list(t) {
		if p.ImportPath != module+"/stage" {
			continue
		}
		for _, d := range p.Deps {
			for _, dir := range []string{"sources", "sinks", "transport", "cmd"} {
				if under(d, dir) {
					t.Errorf("stage depends on %s: the contract must not know its implementations", d)
				}
			}
		}
		return
	}
	t.Fatal("package stage not listed")
}

func TestProductCodeHasNoTestSupport(t *testing.T) {
	for _, p := range list(t) {
		if under(p.ImportPath, "internal/testing") || under(p.ImportPath, "bench") || p.ImportPath == module+"/stage/stagetest" {
			continue
		}
		for _, d := range p.Deps {
			if under(d, "internal/testing") || d == module+"/stage/stagetest" {
				t.Errorf("%s depends on test support %s", p.ImportPath, d)
			}
		}
	}
}

func TestSinksDoNotImportSources(t *testing.T) {
	for _, p := range list(t) {
		if !under(p.ImportPath, "sinks") {
			continue
		}
		for _, d := range p.Deps {
			if under(d, "sources") {
				t.Errorf("%s depends on %s: an output must not know the inputs", p.ImportPath, d)
			}
		}
	}
}
