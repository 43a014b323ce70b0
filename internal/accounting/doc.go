// Package accounting counts what a run moves, in one place: every byte and
// layer the stages report, per image and in total. Progress and the summary
// read their figures from here, never from a sink.
//
// The stages feed it through the context: a Run's Image is put into the
// context of that image's pipeline with WithImage, and a source finds it with
// FromContext and counts what it reads through Reader (or Add). A source that
// counts its own bytes says so with SourceFed; for the others the engine side
// counts the layers' known sizes as they pass (see cmd/occystrap).
//
// Every method is safe for concurrent use, and every method of a nil *Image
// does nothing, so a source run without accounting needs no checks. Counting
// never blocks: it is atomic additions.
package accounting
