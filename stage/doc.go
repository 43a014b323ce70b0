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
// When the sink declares that it needs layers in order (OrderedSink), the
// engine puts a credit-based reorder buffer (Window) in front of it. Sources
// that produce layers out of order (parallel downloads) take a credit per
// layer before starting it (WindowUser), so at most W layers are outstanding
// and the buffer never holds more than W items. Such a source must wait for
// credit with a context that its own workers' failure cancels: the credit for
// a layer after a failed one never comes. Sinks that do not need order
// take layers as they finish.
//
// A sink that already holds some layers (Haver) lets a source that can
// (SkipUser) emit those layers with a nil Body instead of fetching them; the
// engine wires this only when no stage rewrites layers (ContentChanger) or
// needs to read every layer (AllLayersNeeder).
//
// Passthrough of compressed blobs: a sink that implements CompressedSink
// (WantsCompressed) and a source that implements CompressedSource
// (UseCompressed) are wired by Run when no stage implements ContentChanger
// with true. The source then gives layer bodies that also implement
// Compressed, and sends its manifest as fetched in one KindManifest item
// (Seq -2, Data = bytes, Name = media type), in any order relative to the
// other items. Stages that do not change content forward it unchanged; no
// other sink ever sees one.
//
// Concurrency: Run may be called from many goroutines at once (one per image);
// a Stats value is updated atomically and may be read while a run is going.
package stage
