// Package imageinfo is what the info and check commands know of an image and
// how they print it, as the original occystrap does.
//
// Meta holds an image's manifest and config as parsed JSON that keeps key
// order (pyjson), because the original prints labels, environment and the
// JSON info in the order the documents give them. Info builds the info
// document (the original's _build_info) and WriteInfoText and WriteJSON print
// it byte for byte as the original: field order, the PrettyTable layer table,
// FormatSize, digests cut to 25 characters plus "...", JSON with an indent of
// 2 and non-ASCII escaped.
//
// Checks: CheckMetadata runs the metadata checks (check --fast), on the
// manifest and config alone. LayerCheck is a stage.Stage for a full check:
// it reads every layer as the engine delivers it, up to Parallel at once, in
// one streaming pass per layer (the DiffID hashed while the tar is walked, no
// layer held in memory), and checks the config bytes against the manifest.
// Its Results, once the run is over, lists the results in the original's
// order: config checks, then each layer's in layer order, then duplicate
// files. WriteCheckText and CheckDocument print them.
//
// The commands' output (render.go): WriteInfo and WriteInfos print one or
// many images' info documents and WriteCheck a check's results, as text or
// JSON (--output-format); Check runs the metadata checks and, unless fast,
// the LayerCheck over the image.
//
// Everything here is a pure function of its inputs except LayerCheck, whose
// Run is called once by the engine; its Results may be read after Run
// returns.
package imageinfo
