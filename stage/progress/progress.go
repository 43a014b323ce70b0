package progress

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
)

// Line is a writer with a live line under it: a write through it erases the
// line first, and the next Draw puts it back.
type Line struct {
	W     io.Writer
	Width int // columns; a longer line is cut (0: not cut)

	mu    sync.Mutex
	drawn bool
}

// Write erases the live line, if drawn, then writes p.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eraseLocked()
	return l.W.Write(p)
}

// Unwrap is the writer under the line.
func (l *Line) Unwrap() io.Writer { return l.W }

// Draw replaces the live line with s.
func (l *Line) Draw(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Width > 1 && len(s) > l.Width-1 {
		s = s[:l.Width-1]
	}
	_, _ = io.WriteString(l.W, "\r\033[K"+s)
	l.drawn = true
}

// Clear erases the live line.
func (l *Line) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eraseLocked()
}

func (l *Line) eraseLocked() {
	if l.drawn {
		_, _ = io.WriteString(l.W, "\r\033[K")
		l.drawn = false
	}
}

// Options say how a Reporter reports.
type Options struct {
	// Live draws on Line (a terminal in console mode); otherwise events.
	Live bool
	Line *Line
	// Redraw is the live line's period (default 250 ms).
	Redraw time.Duration
	// Interval is the period of progress events; 0 turns them off.
	Interval time.Duration
	// RateLimit, when set, is the request rate limit now in requests per
	// second (0: none); it moves under --rate-limit auto, so it is shown.
	RateLimit func() float64
}

// Reporter reports one run.
type Reporter struct {
	run *accounting.Run
	log zerolog.Logger
	o   Options

	mu        sync.Mutex
	lastBytes int64
	lastAt    time.Duration
	rate      float64
}

// New makes the reporter of run; events go to log.
func New(run *accounting.Run, log zerolog.Logger, o Options) *Reporter {
	if o.Redraw <= 0 {
		o.Redraw = 250 * time.Millisecond
	}
	if o.Live && o.Line == nil {
		o.Live = false
	}
	return &Reporter{run: run, log: log, o: o}
}

// Run reports until ctx is done, then clears the live line.
func (r *Reporter) Run(ctx context.Context) {
	every := r.o.Interval
	if r.o.Live {
		every = r.o.Redraw
	}
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Clear()
			return
		case <-tick.C:
		}
		r.Report()
	}
}

// Clear erases the live line, if any.
func (r *Reporter) Clear() {
	if r.o.Live {
		r.o.Line.Clear()
	}
}

// Report draws the live line or logs one progress event now.
func (r *Reporter) Report() {
	s := r.run.Snapshot()
	rate := r.sample(s)
	if r.o.Live {
		line := Text(s, rate)
		if r.o.RateLimit != nil {
			if l := r.o.RateLimit(); l > 0 {
				line += fmt.Sprintf(", limit %.0f req/s", l)
			}
		}
		r.o.Line.Draw(line)
		return
	}
	e := Event(r.log.Info(), s, rate)
	if r.o.RateLimit != nil {
		e = e.Float64("rate_limit_per_s", r.o.RateLimit())
	}
	e.Msg("Progress")
}

// sample is the rate since the last report (the average since the start
// at the first).
func (r *Reporter) sample(s accounting.Snapshot) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := s.Elapsed - r.lastAt
	if dt > 0 {
		inst := accounting.Rate(s.Bytes-r.lastBytes, dt)
		if r.lastAt == 0 {
			r.rate = inst
		} else {
			r.rate = 0.5*r.rate + 0.5*inst
		}
	}
	r.lastBytes, r.lastAt = s.Bytes, s.Elapsed
	return r.rate
}

// Text is the live line for s at rate bytes/s.
func Text(s accounting.Snapshot, rate float64) string {
	var b strings.Builder
	if s.ImagesTotal > 1 {
		fmt.Fprintf(&b, "[%d/%d] ", s.ImagesDone, s.ImagesTotal)
	} else if len(s.Running) == 1 {
		b.WriteString(s.Running[0].Name + " ")
	}
	fmt.Fprintf(&b, "%s / %s", Size(s.Bytes), Size(s.BytesKnown))
	fmt.Fprintf(&b, ", %s/s", Size(int64(rate)))
	if eta, ok := accounting.ETA(s.Bytes, s.BytesKnown, rate); ok {
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	if s.ImagesTotal > 1 {
		for _, f := range s.Running {
			n := f.Name[strings.LastIndex(f.Name, "/")+1:]
			fmt.Fprintf(&b, " | %s %s/%s", n, Size(f.Bytes), Size(f.BytesKnown))
		}
	}
	return b.String()
}

// Event adds s's figures to e (the `progress` event).
func Event(e *zerolog.Event, s accounting.Snapshot, rate float64) *zerolog.Event {
	e = e.Int("images_done", s.ImagesDone).Int("images_failed", s.ImagesFailed)
	if s.ImagesTotal > 0 {
		e = e.Int("images_total", s.ImagesTotal)
	}
	e = e.Int64("bytes", s.Bytes).Int64("bytes_known", s.BytesKnown).Int64("layers", s.Layers).
		Int64("rate_bytes_per_s", int64(rate)).Int64("elapsed_ms", s.Elapsed.Milliseconds())
	if eta, ok := accounting.ETA(s.Bytes, s.BytesKnown, rate); ok {
		e = e.Int64("eta_s", int64(eta.Round(time.Second)/time.Second))
	}
	arr := zerolog.Arr()
	for _, f := range s.Running {
		arr = arr.Dict(zerolog.Dict().Str("image", f.Name).Int64("bytes", f.Bytes).Int64("bytes_known", f.BytesKnown).
			Int64("layers", f.Layers).Int64("elapsed_ms", f.Elapsed.Milliseconds()))
	}
	return e.Array("running", arr)
}

// Size is the original's format_size: bytes, or KB/MB/GB base 1024 with
// one decimal; N/A for a negative size.
func Size(n int64) string {
	switch {
	case n < 0:
		return "N/A"
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1024*1024*1024))
}
