package main

import (
	"bytes"
	"io"
	"os/exec"
	"regexp"
	"testing"

	"github.com/creack/pty"
)

// sgr is a colour (Select Graphic Rendition) escape sequence.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestColourFollowsTerminalAndNoColor runs the binary with its stderr on a
// real pseudo-terminal and redirected: console logs are coloured only on a
// terminal and never with NO_COLOR set.
func TestColourFollowsTerminalAndNoColor(t *testing.T) {
	archive, _ := writeArchive(t, false)
	args := func() []string {
		return []string{"--log-format", "console", "process", "tar://" + archive, "dir://" + t.TempDir()}
	}
	onTerminal := func(t *testing.T, env ...string) string {
		t.Helper()
		ptm, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptm.Close()
		cmd := exec.Command(binary(t), args()...)
		cmd.Env = append(cleanEnv(), env...)
		cmd.Stdout, cmd.Stderr = io.Discard, tty
		if err := cmd.Start(); err != nil {
			tty.Close()
			t.Fatal(err)
		}
		tty.Close()
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, ptm) // EIO once the child has exited
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		return buf.String()
	}
	if out := onTerminal(t); !sgr.MatchString(out) {
		t.Errorf("console logs on a terminal are not coloured:\n%q", out)
	}
	if out := onTerminal(t, "NO_COLOR=1"); sgr.MatchString(out) {
		t.Errorf("NO_COLOR=1 on a terminal: colour codes in\n%q", out)
	}
	_, errs := binMust(t, nil, args()...)
	if sgr.MatchString(errs) {
		t.Errorf("redirected stderr: colour codes in\n%q", errs)
	}
	if !bytes.Contains([]byte(errs), []byte("Processing image")) {
		t.Errorf("redirected stderr lacks the console log:\n%s", errs)
	}
}
