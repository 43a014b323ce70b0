package logging

import (
	"errors"
	"fmt"
	"io"

	"github.com/rs/zerolog"
)

// Printer writes the lines people and scripts read at the end of a run: as
// plain text in console mode, as events in JSON mode.
type Printer struct {
	Log    zerolog.Logger
	W      io.Writer // where console text goes (stderr)
	Format Format
}

// Status writes text (console) or an info event msg with fields (JSON).
func (p *Printer) Status(msg, text string, fields func(e *zerolog.Event)) {
	if p.Format == Console {
		fmt.Fprintln(p.W, text)
		return
	}
	e := p.Log.Info()
	if fields != nil {
		fields(e)
	}
	e.Msg(msg)
}

// Fatal reports the error that ends the process: `Error: ...` and, when
// there is one, `Hint: ...` (console), or an error event with the message,
// the chain of wrapped errors, the hint and the exit code (JSON). msg is
// "Error" or "Usage error".
func (p *Printer) Fatal(msg, text string, chain []string, hint string, code int) {
	if p.Format == Console {
		fmt.Fprintf(p.W, "Error: %s\n", text)
		if hint != "" {
			fmt.Fprintf(p.W, "Hint: %s\n", hint)
		}
		return
	}
	e := p.Log.Error().Str("error", text)
	if len(chain) > 1 {
		e = e.Strs("error_chain", chain)
	}
	if hint != "" {
		e = e.Str("hint", hint)
	}
	e.Int("exit_code", code).Msg(msg)
}

// Chain is the messages of err and of each error it wraps, outermost first,
// each shown once (a wrapper that only adds nothing is skipped); f, if not
// nil, is applied to each (redaction).
func Chain(err error, f func(string) string) []string {
	var out []string
	last := ""
	for e := err; e != nil; e = errors.Unwrap(e) {
		m := e.Error()
		if f != nil {
			m = f(m)
		}
		if m != last {
			out = append(out, m)
		}
		last = m
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				out = append(out, Chain(x, f)...)
			}
			break
		}
	}
	return out
}
