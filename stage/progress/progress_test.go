package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
)

func TestLiveLineAndEvent(t *testing.T) {
	run := accounting.NewRun()
	im := run.Image("fixture/app:v1")
	im.Start()
	im.Expect(3 << 20)
	im.Add(1 << 20)

	var out bytes.Buffer
	line := &Line{W: &out, Width: 200}
	r := New(run, zerolog.Nop(), Options{Live: true, Line: line})
	r.Report()
	if got := out.String(); !strings.HasPrefix(got, "\r\033[Kfixture/app:v1 1.0 MB / 3.0 MB, ") || !strings.Contains(got, "/s") {
		t.Errorf("live line %q", got)
	}
	out.Reset()
	_, _ = line.Write([]byte("a log line\n"))
	if got := out.String(); got != "\r\033[Ka log line\n" {
		t.Errorf("a write over the live line: %q", got)
	}

	var ev bytes.Buffer
	log := zerolog.New(&ev)
	New(run, log, Options{}).Report()
	var m map[string]any
	if err := json.Unmarshal(ev.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, ev.String())
	}
	if m["bytes"] != float64(1<<20) || m["bytes_known"] != float64(3<<20) || m["message"] != "Progress" {
		t.Errorf("event %v", m)
	}
	running := m["running"].([]any)
	if len(running) != 1 || running[0].(map[string]any)["image"] != "fixture/app:v1" {
		t.Errorf("running %v", running)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{-1: "N/A", 0: "0 B", 1023: "1023 B", 1536: "1.5 KB", 5 << 20: "5.0 MB", 3 << 30: "3.0 GB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
