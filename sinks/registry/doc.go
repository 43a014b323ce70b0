// Package registry is the registry:// destination: it pushes one image per
// Sink to a registry through the shared transport, sending only what the
// destination lacks and never holding a layer in memory.
//
// For each blob (config and layers) the sink first settles what the blob is
// and whether the destination has it, then uploads it if not:
//
//   - Passthrough. When the engine wired it (no stage changes content; see
//     stage.SinkProperties.Compressed), layer bodies implement
//     stage.Compressed: the source's compressed blob is copied byte for byte
//     with its media type.
//     A registry source's body also tells the blob's descriptor and origin
//     and streams it under the sink's context (BlobOrigin), so the blob is
//     not even downloaded when the destination has it or can mount it, and
//     is otherwise streamed from the source registry straight into the
//     upload; a tar:// blob is hashed first (a local read). When
//     every layer was copied through and the source sent its manifest
//     (stage.KindManifest), that manifest is pushed as fetched, so the
//     destination's digest equals the source's.
//   - Layer cache (--layer-cache, internal/layercache). A layer whose key
//     (the source's layer name) is recorded under this run's filters hash,
//     and whose blob a HEAD confirms, is not compressed or sent.
//   - Otherwise the layer tar is compressed (gzip through klauspost/pgzip
//     in fixed 1 MiB blocks at level 6, or zstd level 3 with one encoder
//     goroutine; mtime 0, no name: the same tar always gives the same blob)
//     in an io.Pipe straight into the upload, hashed on the way.
//
// Each blob gets a goroutine as its item comes (up to 64 at once; a
// manifest naming thousands of blobs waits); existence checks and mounts
// run at once, uploads (and hashing a local blob) take one of Workers
// slots (the config, small and in memory, takes none). When the source's
// manifest comes (passthrough, before the config and layers), every blob
// it names is HEADed then, 16 at a time in goroutines of their own, and the
// answer used when the blob comes; the first sink of a run to push to a
// host pings it (GET /v2/) as it starts, so its connection is up by then.
// A blob that is missing is mounted (POST ?mount=&from=) when it came from
// another repository of the same registry, or when this run already pushed
// it to another repository of the destination (Pushed, shared by an
// Output's sinks); a 202 instead of a mount falls back to an upload in the
// session it opened. Such a blob (the config too, when the source is a
// registry) is not HEADed before the mount unless the HEAD sent ahead has
// already answered: the mount's own answer covers a blob the repository
// has, one round trip less. A mount waits for no claim and no slot (it
// moves no data); only what may be uploaded is claimed run-wide, so that
// two sinks never send one blob, and mounts into one repository go one at
// a time (Pushed.claimIn), so that none is sent twice.
//
// Ahead of the image's turn (a bulk run's lookahead, Output.HeadAhead),
// the output can do the same before its sink exists: HEAD every blob of
// the source's manifest (16 at a time, and across the run at most twice
// as many as the run has download slots: Ahead), copy the blobs no
// earlier image of the run has (in the run's download slots, under the
// claim), and mount the others once the image that brings them has pushed
// them. The sink then finds
// them in the record of pushed blobs, counts them as its own uploads and
// mounts, and its turn is left with the manifest.
//
// Uploads stream, through the transport's upload engine
// (transport.Registry.PutBlob; the sink decides only what to send and
// whether to mount). A blob of known digest and size (a copied blob, the
// config) up to min(transport.MonolithicMax (32 MiB), ChunkSize) goes in one PUT
// ?digest= after the POST, its body streamed from the source (opened while
// the POST is answered); a PUT that fails is sent again from the start in a
// new session. Otherwise the first min(1 MiB, ChunkSize) bytes are read
// ahead: a blob that ends there goes in one monolithic PUT ?digest= (a
// recompressed one is first checked with a HEAD, now that its digest is
// known). A larger one is sent as PATCH chunks of up to ChunkSize (256 MiB)
// read straight from the stream into the request body (compression or the
// source registry's download runs in a pipe into it; nothing is buffered
// but a 64 KiB read buffer), hashed on the way, then a closing PUT with the
// digest. Chunks carry Content-Range and Content-Length when the blob's
// size is known (passthrough), and are streamed otherwise. Bodies above
// transport.BulkMin go over their own HTTP/1.1 connections (see
// transport.Request.Bulk).
//
// Retries without holding the layer: a streamed body cannot be re-read, so
// the transport does not resend a chunk it has started to send; instead
// PutBlob asks the registry for the upload's offset (GET on the session), opens
// the blob's stream again (the source blob again, or the compression run
// again from the layer's start; it is deterministic), skips and hashes what
// the registry has, and resumes from there (up to --retries times). Memory
// is therefore bounded by Workers × (1 MiB + the compressor's blocks),
// whatever the layer size.
//
// The manifest (Docker schema 2, compact JSON, keys schemaVersion,
// mediaType, config, layers, as the original writes it, unless copied
// through) is pushed only after every blob has landed; a failed blob fails
// the image with "Upload failed: ..." and no manifest is pushed. An image
// with no config fails with "No config file was processed". The layer cache
// is recorded and saved after the manifest push.
//
// Files: intake.go (Consume), ahead.go (HEADs, copies and mounts sent ahead), blobs.go (mount,
// skip or upload), pushed.go (the run-wide record of pushed blobs),
// manifest.go (the manifest built and pushed), pools.go (read-ahead
// buffers), compress.go, output.go (the destination and its verify).
//
// A Sink serves one run; an Output and its shared Pushed and cache are safe
// for concurrent use by many sinks.
package registry
