// Package registry is the registry:// source: it pulls one image from a
// registry through the shared transport.
//
// Emit fetches the manifest (Docker v2, Docker list, OCI manifest or OCI
// index; a list is resolved to the platform asked for), then the config,
// which it sends first (name "<hex>.json", its bytes exactly as fetched).
// Layers are downloaded by a conc pool of Workers goroutines, each through a
// streaming pipeline: compressed digest verified while it streams (with Range
// resume on a lost connection), decompressed on the fly (gzip or zstd), and
// written to a temporary file in TempDir while its DiffID is hashed and then
// checked against the config. Each layer is sent as soon as it finishes, as a
// stage.FileBody{Temp: true} named by its compressed digest's hex (as the
// original occystrap names registry layers); whoever holds it last releases
// it. A sink that needs order gets them through the engine's reorder buffer:
// the source takes a window credit before starting each layer.
//
// Layers the destination already has are not fetched: the engine hands a
// source the sink's Has (stage.Wiring) when nothing between them changes
// content, and such a layer is sent with a nil Body. In a multi-image run
// every image's source shares one Blobs (Options.Blobs), a digest-keyed
// scheduler through which a layer several images need is downloaded once and
// its temporary file shared, reference-counted (see Blobs). Such a run also
// fetches images ahead of their turn (Blobs.Prefetch, ordered by the
// multi-image scheduler, package stage/schedule): the manifest and config a
// source will ask for are kept in Blobs, and the layers held as flights, so
// the source finds them ready.
//
// Passthrough (passthrough.go): when the engine wires Compressed (a sink
// that copies compressed blobs, no stage changing content), nothing is
// downloaded ahead. The manifest is sent as fetched (stage.KindManifest) and
// each layer at once, with a body that streams its verified blob from the
// registry only when read (OpenBlob under the reader's context, or
// OpenCompressed / a decompressing Open under the run's), and whose DiffID
// is the config's. A blob the destination has is then never downloaded.
//
// A Source is used by one run at a time; the transport it holds is shared.
// On failure every temporary file it made is removed.
package registry
