package main

import "os"

// colour reports whether output to a terminal (or not) may carry colour
// codes: only on a terminal, and never when NO_COLOR is set to anything
// (no-color.org).
func colour(terminal bool) bool {
	return os.Getenv("NO_COLOR") == "" && terminal
}
