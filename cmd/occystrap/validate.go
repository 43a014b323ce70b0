package main

import (
	"fmt"
)

// Validate checks flag values kong cannot: counts that must be at least 1.
// kong calls it once the command line is parsed, and a failure exits 2 as
// any other bad command line.
func (c *CLI) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"-j/--parallel", c.Parallel}, {"-J/--image-parallel", c.ImageParallel}} {
		if f.v < 1 {
			return fmt.Errorf("%s must be at least 1, got %d", f.name, f.v)
		}
	}
	if c.Retries < 0 {
		return fmt.Errorf("--retries must be 0 or more, got %d", c.Retries)
	}
	return nil
}
