package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Format is the form of the event stream.
type Format int

const (
	// JSON is one JSON object per line.
	JSON Format = iota
	// Console is zerolog's readable form, with plain status lines.
	Console
)

// EnvFormat names the environment variable that gives the default format.
const EnvFormat = "OCCYSTRAP_LOG_FORMAT"

// ParseFormat reads auto|json|console; auto is console on a terminal and
// JSON otherwise.
func ParseFormat(s string, terminal bool) (Format, error) {
	switch strings.ToLower(s) {
	case "json":
		return JSON, nil
	case "console":
		return Console, nil
	case "", "auto":
		if terminal {
			return Console, nil
		}
		return JSON, nil
	}
	return JSON, fmt.Errorf("log format %q: want auto, json or console", s)
}

// TimeFormat is RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

var setup sync.Once

// Setup sets zerolog's global formats: RFC 3339 timestamps with
// milliseconds, durations in milliseconds. Call it before the first event.
func Setup() {
	setup.Do(func() {
		zerolog.TimeFieldFormat = TimeFormat
		zerolog.DurationFieldUnit = time.Millisecond
		zerolog.DurationFieldInteger = false
	})
}

// Options say how New logs.
type Options struct {
	Format  Format
	Level   zerolog.Level
	NoColor bool // console: no colour codes
}

// New is the process's logger writing to w.
func New(w io.Writer, o Options) zerolog.Logger {
	Setup()
	var out io.Writer
	if o.Format == Console {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, FieldsExclude: []string{"event"}, NoColor: o.NoColor}
	} else {
		out = &Normalizer{W: w}
	}
	return zerolog.New(out).Level(o.Level).With().Timestamp().Logger()
}

// events maps a message to its event name where the name is not the
// message's own words (EventName).
var events = map[string]string{
	"Summary":         "summary",
	"Error":           "error",
	"Usage error":     "usage_error",
	"Progress":        "progress",
	"Image complete":  "image_complete",
	"Version":         "version",
	"No images found": "no_images",
}

// EventName is the stable event name of an event with message msg: its
// words in snake case ("Processing complete" is processing_complete), or
// the name events gives it. Messages are constant; what varies is a field.
func EventName(msg string) string {
	if e, ok := events[msg]; ok {
		return e
	}
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(msg) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		default:
			under = true
		}
	}
	if b.Len() == 0 {
		return "log"
	}
	return b.String()
}

// Normalizer is the last step of JSON mode: it takes zerolog's lines and
// writes each with an `event` field (from its message) right after `level`
// and `time`, and with only the first of any key given twice (a field a
// sub-logger added that an event adds again). A write that is not one JSON
// object is written as the message of an event named `raw`, so the stream
// stays JSON.
type Normalizer struct {
	W  io.Writer
	mu sync.Mutex
}

type field struct {
	key string
	val json.RawMessage
}

// Write rewrites one line (or several, each in turn).
func (n *Normalizer) Write(p []byte) (int, error) {
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fs, err := parseObject(line)
		if err != nil {
			raw, _ := json.Marshal(string(line))
			fs = []field{{"level", json.RawMessage(`"info"`)}, {"event", json.RawMessage(`"raw"`)}, {"message", raw}}
		}
		normalize(&out, fs)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.W.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func parseObject(line []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var fs []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("not a key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fs = append(fs, field{k, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return fs, nil
}

// normalize writes fs as one line: level, time, event first, then the rest
// in their order, each key once.
func normalize(out *bytes.Buffer, fs []field) {
	seen := map[string]bool{}
	byKey := map[string]json.RawMessage{}
	for _, f := range fs {
		if _, ok := byKey[f.key]; !ok {
			byKey[f.key] = f.val
		}
	}
	if _, ok := byKey["event"]; !ok {
		msg := ""
		if m, ok := byKey["message"]; ok {
			_ = json.Unmarshal(m, &msg)
		} else if byKey["level"] != nil {
			msg = "log"
		}
		if msg == "" {
			msg = "raw"
		}
		ev, _ := json.Marshal(EventName(msg))
		byKey["event"] = ev
	}
	out.WriteByte('{')
	first := true
	put := func(k string, v json.RawMessage) {
		if seen[k] || v == nil {
			return
		}
		seen[k] = true
		if !first {
			out.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		out.Write(kb)
		out.WriteByte(':')
		out.Write(v)
	}
	for _, k := range []string{"level", "time", "event"} {
		put(k, byKey[k])
	}
	if _, ok := byKey["time"]; !ok {
		tb, _ := json.Marshal(time.Now().Format(TimeFormat))
		put("time", tb)
	}
	for _, f := range fs {
		if f.key != "message" {
			put(f.key, byKey[f.key])
		}
	}
	put("message", byKey["message"])
	out.WriteString("}\n")
}

// IsTerminal reports whether w, or the writer it wraps (an Unwrap method),
// is a terminal.
func IsTerminal(w io.Writer) bool {
	for {
		if f, ok := w.(*os.File); ok {
			return isTerminal(f)
		}
		u, ok := w.(interface{ Unwrap() io.Writer })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}
