package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// slowRegistry serves a 6-layer image with every request delayed, so that a
// run lasts long enough to see progress.
func slowRegistry(t *testing.T, delay time.Duration) *testregistry.Registry {
	t.Helper()
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: testregistry.Latency(delay)})
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 44, Layers: 6, LayerSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	return reg
}

// onPTY runs the CLI with stderr on a pseudo-terminal and returns what the
// terminal got.
func onPTY(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 200}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() { // ends when the terminal is closed
		b, _ := io.ReadAll(ptmx)
		got <- string(b)
	}()
	var out lockedBuffer
	code := runIO(args, strings.NewReader(""), &out, tty)
	tty.Close()
	select {
	case s := <-got:
		return code, s
	case <-time.After(30 * time.Second):
		t.Fatal("the terminal was not drained")
	}
	return code, ""
}

// TestProgressOnTerminal: on a pseudo-terminal the console form draws a live
// line with bytes done of bytes known and a rate, and erases it at the end;
// in JSON form on a terminal no live line is drawn and every line is JSON.
func TestProgressOnTerminal(t *testing.T) {
	// At -j 1 the layers download one after another over at least 0.9 s:
	// several redraws fall while bytes are moving.
	reg := slowRegistry(t, 150*time.Millisecond)
	src := "registry://" + reg.Host + "/fixture/app:v1"

	code, term := onPTY(t, "--insecure", "-j", "1", "process", src, "dir://"+t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d:\n%q", code, term)
	}
	live := regexp.MustCompile(`\r\x1b\[Kfixture/app:v1 [0-9.]+ (B|KB|MB) / [0-9.]+ (B|KB|MB), [0-9.]+ (B|KB|MB)/s`)
	if !live.MatchString(term) {
		t.Errorf("no live byte progress line on the terminal:\n%q", term)
	}
	// Some line shows bytes moved (not all 0 B).
	if !regexp.MustCompile(`\r\x1b\[Kfixture/app:v1 [0-9.]+ (KB|MB) / `).MatchString(term) {
		t.Errorf("the live line never showed bytes done:\n%q", term)
	}
	if i := strings.LastIndex(term, "Summary: 6 layers"); i < 0 || !strings.Contains(term[:i], "\r\x1b[K") {
		t.Errorf("no summary after the live line was cleared:\n%q", term)
	}

	code, term = onPTY(t, "--log-format", "json", "--progress-interval", "50ms", "--insecure", "-j", "1", "process", src, "dir://"+t.TempDir())
	if code != 0 {
		t.Fatalf("json: exit %d:\n%q", code, term)
	}
	if strings.Contains(term, "\x1b") || strings.Contains(strings.ReplaceAll(term, "\r\n", "\n"), "\r") {
		t.Errorf("JSON form on a terminal has terminal control:\n%q", term)
	}
	// The terminal turns \n into \r\n; otherwise the lines are what a
	// pipe gets, and are checked as TestJSONEventStream checks them.
	schema, jq := loadSchema(t), jqPath(t)
	evs := checkStream(t, schema, jq, strings.ReplaceAll(term, "\r\n", "\n"))
	if len(eventsNamed(evs, "progress")) == 0 || len(eventsNamed(evs, "summary")) != 1 {
		t.Errorf("JSON form on a terminal: want progress events and one summary:\n%s", term)
	}

	// Many images, JSON form, on a terminal.
	q, qreg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true, Wrap: testregistry.Latency(20 * time.Millisecond)})
	kollaCorpus(t, q, qreg, 4)
	code, term = onPTY(t, "--log-format", "json", "--progress-interval", "20ms", "--insecure", "process",
		"quay://openstack.kolla/*:2025.1-debian-bookworm?host="+qreg.Host, "dir://"+t.TempDir()+"?unique_names=true")
	if code != 0 {
		t.Fatalf("many images, json: exit %d:\n%q", code, term)
	}
	evs = checkStream(t, schema, jq, strings.ReplaceAll(term, "\r\n", "\n"))
	if len(eventsNamed(evs, "image_complete")) != 4 || len(eventsNamed(evs, "summary")) != 1 {
		t.Errorf("many images, JSON form on a terminal: want 4 image_complete and one summary:\n%s", term)
	}

	// Many images, console form: the live line totals the run (a slower
	// registry, one image and one layer at a time, so that it is drawn).
	slowQ, slowReg := testquay.Start(t, testquay.Options{}, testregistry.Options{Plain: true, Wrap: testregistry.Latency(80 * time.Millisecond)})
	kollaCorpus(t, slowQ, slowReg, 4)
	code, term = onPTY(t, "--insecure", "-J", "1", "-j", "1", "process",
		"quay://openstack.kolla/*:2025.1-debian-bookworm?host="+slowReg.Host, "dir://"+t.TempDir()+"?unique_names=true")
	if code != 0 {
		t.Fatalf("many images, console: exit %d:\n%q", code, term)
	}
	if !regexp.MustCompile(`\r\x1b\[K\[[0-4]/4\] [0-9.]+ (B|KB|MB) / [0-9.]+ (B|KB|MB), `).MatchString(term) ||
		!strings.Contains(term, "[4/4] ") || !strings.Contains(term, "No failed images.") {
		t.Errorf("many images on a terminal: no live total line, or no [k/N] lines:\n%q", term)
	}
}

// TestInterruptExits130: SIGINT during a run cancels it, reports it and
// exits 130 (the binary, as a shell runs it).
func TestInterruptExits130(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "occystrap")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reg := slowRegistry(t, 300*time.Millisecond)
	cmd := exec.Command(bin, "--log-format", "json", "--insecure", "-j", "1", "process",
		"registry://"+reg.Host+"/fixture/app:v1", "dir://"+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), `"event":"processing_image"`) {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, strings.Join(lines, "\n"))
	}
	var last map[string]any
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last["event"] != "error" || last["exit_code"] != 130.0 {
		t.Errorf("last line is not the error event with exit_code 130:\n%s", strings.Join(lines, "\n"))
	}
	_ = os.Remove(bin)
}
