package stage

import "context"

// This file is the contract between the engine and the components a source,
// filter or sink author writes. The conformance suite in stage/stagetest
// checks a sink against it (RunSinkConformance).

// Source produces the items of one image: the config and every layer.
//
//   - It sends each item with Send (or an equivalent select on ctx.Done), and
//     the ownership of an item's Body passes with the send; an item it could
//     not send is released.
//   - It must not close out; the engine closes it after Emit returns.
//   - It sends exactly one KindConfig item (Seq -1) and each layer once, in
//     any order, unless it emits in Seq order or takes a Window credit per
//     layer (see Wiring).
//   - When ctx is cancelled it stops, releases what it holds and returns
//     (the context's error, or nil).
type Source interface {
	Emit(ctx context.Context, out chan<- Item) error
	Properties() SourceProperties
}

// SourceProperties is what a source declares about itself.
type SourceProperties struct {
	// Name is the source's name in the statistics ("source" when empty).
	Name string
}

// Wirable is implemented by a source that takes what the engine decided
// for a run: before Emit, Run calls Wire once with the run's Wiring. A
// source that emits layers in Seq order, never skips and never hands out
// compressed blobs need not implement it.
type Wirable interface {
	Wire(w Wiring)
}

// Wiring is what the engine tells a source (Wirable) before it runs. Each
// field is a permission or a duty the source may ignore when it cannot use
// it, except Window, which binds a source that emits out of order.
type Wiring struct {
	// Window is the run's reorder window, non-nil when the sink needs
	// layers in order. A source that produces layers out of order (parallel
	// downloads) must Acquire a layer's Seq before it starts working on it,
	// with a context that its own workers' failure cancels: the credit for a
	// layer after a failed one never comes. A source that emits in Seq order
	// may ignore it (the engine takes the credit on its edge).
	Window *Window
	// Has, when not nil, tells which layers (by Item.Name) the sink already
	// holds: the source may emit those with a nil Body instead of fetching
	// them. It is nil when a stage rewrites layers or needs to read every
	// layer (StageProperties).
	Has func(name string) bool
	// Compressed is true when the sink copies compressed blobs and no stage
	// changes content: the source may then give layer bodies that also
	// implement Compressed, and send its manifest as fetched in one
	// KindManifest item (Seq -2, Data = bytes, Name = media type), in any
	// order relative to the other items.
	Compressed bool
}

// Stage reads items, and writes the same or rewritten items. A stage that
// rewrites layers may hold the config back until every layer has passed (the
// layer names and DiffIDs it refers to change on the way). It must not close
// out; every item it receives it either sends on or releases. A stage that
// does not change content forwards a KindManifest item unchanged.
type Stage interface {
	Run(ctx context.Context, in <-chan Item, out chan<- Item) error
	Properties() StageProperties
}

// StageProperties is what a stage (filter) declares about itself.
type StageProperties struct {
	// Name is the stage's name in the statistics ("stageN" when empty).
	Name string
	// ChangesContent is true when the stage may rewrite layer content, and
	// so layer names: the sink cannot tell from a source's name whether it
	// has the rewritten layer (no skipping), and compressed passthrough is
	// off.
	ChangesContent bool
	// NeedsAllLayers is true when the stage must read every layer, even one
	// the sink already has (search, check): no skipping.
	NeedsAllLayers bool
}

// Sink consumes the items of one image and finishes the output when in is
// closed. Its contract (checked by stagetest.RunSinkConformance):
//
//   - Every item received is the sink's: it calls Release on each Body
//     exactly once, whatever happens (success, failure, cancellation).
//   - Layers arrive in any order, unless Properties says Ordered: then the
//     engine hands them over in Seq order. Either way the output is the
//     same.
//   - A skipped layer (Item.Skipped, nil Body) is one the sink said it Has:
//     the sink uses its own copy, or fails with an error that is
//     ErrMissingLayer when it has none.
//   - A KindManifest item is for a sink that declared Compressed; every
//     other sink releases it and otherwise ignores it.
//   - A second KindConfig item is an error (ErrSecondConfig).
//   - When in is closed without a config, Consume fails with an error that
//     is ErrNoConfig, and writes no finished output.
//   - It finishes its output (a manifest, a catalog entry, a rename to the
//     final name) only after Recv reported the end of a complete image
//     (false with a nil error); on cancellation it stops, leaves no
//     goroutine behind and returns promptly.
type Sink interface {
	Consume(ctx context.Context, in <-chan Item) error
	Properties() SinkProperties
}

// SinkProperties is what a sink declares about itself, read once per run
// by the engine (as containers/image's impl.Properties): capabilities as
// data rather than optional interfaces.
type SinkProperties struct {
	// Name is the sink's name in the statistics ("sink" when empty).
	Name string
	// Ordered is true when the sink needs layers in Seq order: the engine
	// puts a credit-based reorder buffer (Window) in front of it.
	Ordered bool
	// Has, when not nil, reports whether the sink already holds a layer by
	// its name (for example a dir:// output whose <name>/layer.tar
	// exists), so that the source may skip fetching it.
	Has func(name string) bool
	// Compressed is true when the sink can copy layers as the source's
	// compressed blobs (a registry output); see Wiring.Compressed.
	Compressed bool
}

// Input is an opened input: a Source that knows the image it yields
// before it runs. Close releases what the input holds (temporary files, a
// pushed-to server); it is safe to call more than once and after a failed
// or cancelled Emit.
type Input interface {
	Source
	Image() Image
	Close() error
}

// Output is an opened destination. Sink gives the sink for one image; a
// multi-image run asks for one per image of the same output, and may run
// them concurrently. A sink finishes its image's output before its Consume
// returns; Close only releases what the output holds (a lock, a daemon
// connection) and is safe to call more than once. Sink after Close fails
// with an error that is ErrClosed; an output that holds a single image
// fails a second Sink with an error that is ErrOneImage.
type Output interface {
	Sink(img Image) (Sink, error)
	Close() error
}

// Verifier is an Output that can check what it wrote. It returns the
// problems it found, as the original's messages, and an error only when it
// could not check at all. full asks for a check of the content (digests),
// not only of the structure.
type Verifier interface {
	Verify(ctx context.Context, img Image, full bool) (problems []string, err error)
}

// ChangesContent reports whether any of stages rewrites layer content.
func ChangesContent(stages []Stage) bool {
	for _, s := range stages {
		if s.Properties().ChangesContent {
			return true
		}
	}
	return false
}

// SkipAllowed reports whether a source may skip layers the sink has: no
// stage renames layers or needs to see them all.
func SkipAllowed(stages []Stage) bool {
	for _, s := range stages {
		if p := s.Properties(); p.ChangesContent || p.NeedsAllLayers {
			return false
		}
	}
	return true
}
