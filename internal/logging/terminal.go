package logging

import (
	"os"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Width is the terminal's width in columns, or 0 when w is no terminal.
func Width(w interface{}) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	c, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return c
}
