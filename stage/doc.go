// Package stage is the pipeline engine.
//
// A run moves one image from a Source through zero or more Stages (filters)
// into a Sink. Each of them is a goroutine; the engine creates every channel
// between them (small, bounded buffers), closes a component's output channel
// after its Run returns, and owns every goroutine through one conc pool, so
// that no goroutine outlives Run. The first real error cancels the run and is
// the error Run returns; context.Canceled is only reported when nothing else
// failed. A component that fails cancels the run before its output channel
// is closed, and Recv reports a close that comes with a cancellation as the
// cancellation: a sink that sees its input end with no error has received a
// complete image from a run where nothing failed, and only then may it
// finish its output (write a manifest or catalog entry, rename a file to its
// final name).
//
// Items are small: a sequence number, a descriptor and a Body. The Body is a
// file or a re-openable stream (never a whole layer in memory) whose ownership
// passes with the send: whoever holds an item last calls Body.Release.
//
// The contract a source, filter or sink author needs is in contract.go:
// Source, Stage and Sink (with Input, Output and Verifier, the opened forms
// the command line wires), each declaring its capabilities as data in one
// Properties method (SourceProperties, StageProperties, SinkProperties)
// that Run reads once, and Wiring, what Run tells a source (Wirable). The
// error categories every package wraps are in errors.go, with FirstError,
// the one "keep the first real error" helper. stage/stagetest's
// RunSinkConformance checks a sink against the contract.
//
// When the sink declares that it needs layers in order (Ordered), the
// engine puts a credit-based reorder buffer (Window) in front of it. Sources
// that produce layers out of order (parallel downloads) take a credit per
// layer before starting it (Wiring.Window), so at most W layers are
// outstanding and the buffer never holds more than W items. Such a source
// must wait for credit with a context that its own workers' failure
// cancels: the credit for a layer after a failed one never comes. Sinks
// that do not need order take layers as they finish.
//
// A sink that already holds some layers (SinkProperties.Has) lets a source
// emit those layers with a nil Body instead of fetching them
// (Wiring.Has); the engine wires this only when no stage rewrites layers
// (ChangesContent) or needs to read every layer (NeedsAllLayers).
//
// Passthrough of compressed blobs: when the sink declares Compressed and no
// stage changes content, Run wires the source with Compressed. The source
// may then give layer bodies that also implement Compressed, and send its
// manifest as fetched in one KindManifest item (Seq -2, Data = bytes, Name
// = media type), in any order relative to the other items. Stages that do
// not change content forward it unchanged; no other sink ever sees one.
//
// Concurrency: Run may be called from many goroutines at once (one per image);
// a Stats value is updated atomically and may be read while a run is going.
package stage
