// Package progress shows a run's progress from its accounting.Run: on a
// terminal, a live line (per image and in total: bytes done of bytes known,
// rate, ETA) redrawn a few times a second and cleared at the end; otherwise
// a `progress` event with the same figures every interval.
//
// It only reads counters, so it never blocks the data path. Line is the
// writer that stderr goes through while a live line may be drawn: any other
// write first erases the line. Reporter.Run is meant to be owned by the
// caller's pool; its other methods and Line's are safe for concurrent use.
package progress
