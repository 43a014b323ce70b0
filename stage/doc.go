// Package stage is the pipeline engine.
//
// A run moves one image from a Source through zero or more Stages (filters)
// into a Sink. Each of them is a goroutine; the engine creates every channel
// between them (small, bounded buffers), closes a component's output channel
// after its Run returns, and owns every goroutine through one conc pool, so
// that no goroutine outlives Run. The first real error cancels the run and is
// the error Run returns; context.Canceled is only reported when nothing else
// failed.
//
// Items are small: a sequence number, a descriptor and a Body. The Body is a
// file or a re-openable stream (never a whole layer in memory) whose ownership
// passes with the send: whoever holds an item last calls Body.Release.
//
// When the sink declares that it needs layers in order (OrderedSink), the
// engine puts a credit-based reorder buffer (Window) in front of it. Sources
// that produce layers out of order (parallel downloads) take a credit per
// layer before starting it (WindowUser), so at most W layers are outstanding
// and the buffer never holds more than W items. Such a source must wait for
// credit with a context that its own workers' failure cancels: the credit for
// a layer after a failed one never comes. Sinks that do not need order
// take layers as they finish.
//
// When the sink keeps layers (Haver, e.g. a dir:// output shared by many
// images) and the source can skip them (SkipUser), the engine hands the
// source the sink's Has, unless a stage changes content or needs every layer;
// a skipped layer travels with a nil Body.
//
// Concurrency: Run may be called from many goroutines at once (one per image);
// a Stats value is updated atomically and may be read while a run is going.
package stage
