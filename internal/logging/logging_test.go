package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

func TestEventName(t *testing.T) {
	for msg, want := range map[string]string{
		"Processing complete": "processing_complete",
		"Summary":             "summary",
		"Layer fetched":       "layer_fetched",
		"dir:// without unique_names=true: every image": "dir_without_unique_names_true_every_image",
		"":    "log",
		"...": "log",
	} {
		if got := EventName(msg); got != want {
			t.Errorf("EventName(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestNormalizerOneObjectPerLineNoDuplicates(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, Options{Format: JSON, Level: zerolog.DebugLevel})
	sub := log.With().Str("image", "a:1").Logger()
	sub.Info().Str("image", "b:2").Int("layers", 3).Msg("Processing complete")
	sub.Warn().Str("event", "custom").Msg("Whatever")
	_, _ = (&Normalizer{W: &buf}).Write([]byte("not json\n"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "info", "event": "processing_complete", "image": "a:1", "layers": 3.0, "message": "Processing complete", "time": first["time"]}
	if d := cmp.Diff(want, first); d != "" {
		t.Errorf("first line (-want +got):\n%s", d)
	}
	if strings.Count(lines[0], `"image"`) != 1 {
		t.Errorf("image given twice: %s", lines[0])
	}
	if !strings.HasPrefix(lines[0], `{"level":"info","time":"`) || !strings.Contains(lines[0], `Z","event"`) && !strings.Contains(lines[0], `","event"`) {
		t.Errorf("level, time, event not first: %s", lines[0])
	}
	ts := first["time"].(string)
	if len(ts) < len("2006-01-02T15:04:05.000Z") || ts[19] != '.' {
		t.Errorf("timestamp %q has no milliseconds", ts)
	}
	if !strings.Contains(lines[1], `"event":"custom"`) || strings.Count(lines[1], `"event"`) != 1 {
		t.Errorf("explicit event: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"event":"raw"`) && !strings.Contains(lines[2], `"message":"not json"`) {
		t.Errorf("raw line: %s", lines[2])
	}
}

func TestPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := &Printer{Log: New(&buf, Options{Format: JSON, Level: zerolog.InfoLevel}), W: &buf, Format: JSON}
	err := fmt.Errorf("fetch manifest: %w", errors.New("404 Not Found"))
	p.Fatal("Error", err.Error(), Chain(err, nil), "check the tag", 1)
	var ev map[string]any
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if ev["event"] != "error" || ev["level"] != "error" || ev["hint"] != "check the tag" || ev["exit_code"] != 1.0 {
		t.Errorf("event %v", ev)
	}
	if d := cmp.Diff([]any{"fetch manifest: 404 Not Found", "404 Not Found"}, ev["error_chain"]); d != "" {
		t.Errorf("chain: %s", d)
	}
	buf.Reset()
	p.Format = Console
	p.Fatal("Error", "boom", nil, "do this", 1)
	p.Status("Summary", "Summary: 1 layers", nil)
	if got := buf.String(); got != "Error: boom\nHint: do this\nSummary: 1 layers\n" {
		t.Errorf("console: %q", got)
	}
}
