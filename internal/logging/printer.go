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
	// Quiet keeps only the summary (and the fatal error): --quiet.
	Quiet bool
}

// Status writes text (console) or an info event msg with fields (JSON).
// When Quiet, only the summary is written, whatever the log level.
func (p *Printer) Status(msg, text string, fields func(e *zerolog.Event)) {
	summary := msg == "Summary"
	if p.Quiet && !summary {
		return
	}
	if p.Format == Console {
		fmt.Fprintln(p.W, text)
		return
	}
	lg := p.Log
	if summary && lg.GetLevel() > zerolog.InfoLevel {
		lg = lg.Level(zerolog.InfoLevel)
	}
	e := lg.Info()
	if fields != nil {
		fields(e)
	}
	e.Msg(msg)
}

// ConsoleOnly writes text in console mode only: detail that in JSON mode an
// event already carries.
func (p *Printer) ConsoleOnly(text string) {
	if p.Format == Console {
		fmt.Fprintln(p.W, text)
	}
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
// each shown once (a wrapper that adds nothing, such as a join of one
// error, is skipped); f, if not nil, is applied to each (redaction).
func Chain(err error, f func(string) string) []string {
	var out []string
	add := func(e error) {
		m := e.Error()
		if f != nil {
			m = f(m)
		}
		if len(out) == 0 || out[len(out)-1] != m {
			out = append(out, m)
		}
	}
	var walk func(e error)
	walk = func(e error) {
		for e != nil {
			if j, ok := e.(interface{ Unwrap() []error }); ok {
				errs := j.Unwrap()
				if len(errs) == 1 {
					e = errs[0]
					continue
				}
				add(e)
				for _, x := range errs {
					walk(x)
				}
				return
			}
			add(e)
			e = errors.Unwrap(e)
		}
	}
	walk(err)
	return out
}
