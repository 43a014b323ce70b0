// Package progress shows a run's progress from its accounting.Run and
// renders its end: on a terminal, a live line (per image and in total:
// bytes done of bytes known, rate, ETA) redrawn a few times a second and
// cleared at the end; otherwise a `progress` event with the same figures
// every interval. At the end of a run, Summary is the `Summary:` line (or
// event), Tally makes it from a multi-image run's Outcomes, and
// WriteDigests prints the digests of what was written.
//
// Account is the stage that counts what reaches the sink into the image's
// accounting; the reporter only reads counters, so it never blocks the
// data path. Line is the writer that stderr goes through while a live line
// may be drawn: any other write first erases the line. Start runs a
// Reporter on a pool it owns until the stop it returns is called;
// Reporter's other methods and Line's are safe for concurrent use.
package progress
