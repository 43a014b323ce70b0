package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testenv"
)

// completionScript writes the binary's script for shell to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, _ := binMust(t, nil, "completion", shell)
	path := filepath.Join(t.TempDir(), "occystrap."+shell)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func shell(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// TestCompletionBash loads the generated script in a real bash, checks
// `complete -p` registers it, and completes command lines with it.
func TestCompletionBash(t *testing.T) {
	bash := testenv.Tool(t, "bash", "apt-get install bash")
	script := completionScript(t, "bash")
	if got := shell(t, bash, "-c", "source "+script+" && complete -p occystrap"); strings.TrimSpace(got) != "complete -o default -F _occystrap occystrap" {
		t.Fatalf("complete -p occystrap: %q", got)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"occystrap", "pro"}, "process proxy"},
		{[]string{"occystrap", "l"}, "ls"},
		{[]string{"occystrap", "process", "--dr"}, "--dry-run"},
		{[]string{"occystrap", "search", "--sep"}, "--separator"},
		{[]string{"occystrap", "--log-format", ""}, "auto json console"},
		{[]string{"occystrap", "-O", "j"}, "json"},
		{[]string{"occystrap", "--tls"}, "--tls-verify"},
		{[]string{"occystrap", "completion", ""}, "bash zsh fish"},
		{[]string{"occystrap", "help", "pr"}, "process proxy"},
		{[]string{"occystrap", "-j", "4", "process", "qu"}, "quay://"},
		{[]string{"occystrap", "-j", ""}, ""},
	} {
		var quoted []string
		for _, w := range tc.words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + script + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _occystrap; echo \"${COMPREPLY[*]}\""
		if got := strings.TrimSpace(shell(t, bash, "-c", prog)); got != tc.want {
			t.Errorf("%q completes to %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestCompletionZsh loads the script in zsh after compinit and checks it
// is registered for occystrap.
func TestCompletionZsh(t *testing.T) {
	zsh := testenv.Tool(t, "zsh", "apt-get install zsh")
	script := completionScript(t, "zsh")
	shell(t, zsh, "-n", script)
	got := shell(t, zsh, "-f", "-c", "autoload -Uz compinit && compinit -u -D && source "+script+" && print -r -- $_comps[occystrap]")
	if strings.TrimSpace(got) != "_occystrap" {
		t.Errorf("zsh: occystrap completes with %q, want _occystrap", got)
	}
}

// TestCompletionFish completes command lines with fish's own engine.
func TestCompletionFish(t *testing.T) {
	fish := testenv.Tool(t, "fish", "apt-get install fish")
	script := completionScript(t, "fish")
	for _, tc := range []struct{ line, want string }{
		{"occystrap pro", "process\tMove an image"},
		{"occystrap process --dr", "--dry-run\t"},
		{"occystrap --log-format ", "console\t"},
		{"occystrap ls re", "registry://"},
		{"occystrap completion ", "zsh"},
	} {
		got := shell(t, fish, "-c", "source "+script+"; complete -C '"+tc.line+"'")
		if !strings.Contains(got, tc.want) {
			t.Errorf("fish completes %q to\n%s\nwant a line with %q", tc.line, got, tc.want)
		}
	}
}
