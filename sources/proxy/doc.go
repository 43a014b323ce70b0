// Package proxy is `occystrap proxy`: a plain-HTTP registry (the OCI
// distribution API) that sits in front of a downstream registry and runs
// every image that passes through it through occystrap's filters. It
// passes the OCI distribution-spec conformance suite in both modes
// (conformance_test.go runs it).
//
// Pushing (both modes): blob uploads are answered by package
// sources/receiver, the push side shared with dockerpush:// (POST, PATCH,
// PUT ?digest=; a whole blob in one POST ?digest=; chunks checked against
// Content-Range, 416 for one out of order or sent again, nothing
// appended; a chunk cut off keeps what arrived; GET of an upload gives
// 204 with its Range; DELETE cancels it). The proxy's ingest (blobs.go)
// puts them in files of the temp dir (made on the first byte), compressed
// as sent, their sha256 checked on the final PUT; an upload left unused
// for Options.UploadIdle is dropped with its file when the next one
// starts. A blob
// is seen only in the repositories it was uploaded to or mounted into
// (?mount=&from= of a blob held here); the file is shared. When a
// manifest is PUT it is checked (JSON, the digest it is pushed under, its
// blobs received here or held by the downstream: MANIFEST_INVALID,
// DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN). An image the proxy can read
// layer by layer is read back from those blobs as a stage.Source (config,
// then the layers named by their DiffID hex from the config's
// rootfs.diff_ids) and run through the engine, the filters and the
// registry sink into DOWNSTREAM[/PREFIX]/NAME:TAG; with no filter that
// changes content the blobs and the manifest go as received (the sink's
// passthrough). Anything else (an index, an artifact, a config whose
// diff_ids do not match the layers) is forwarded byte for byte when no
// filter changes content, and refused with 400 naming the filter
// otherwise. The PUT answers 201 with Docker-Content-Digest once the
// manifest is downstream, the downstream's own 4xx for a forwarded
// manifest it refused, or 500 when the run failed. A pushed manifest the
// filters changed is kept and served by tag and by digest.
//
// Reading: GET and HEAD of manifests and blobs not held here, tags lists,
// the catalog (limited to the prefix) and referrers are forwarded to the
// downstream. DELETE of manifests, tags and blobs is forwarded (a 405 of
// the downstream is the answer); blobs and manifests kept here are
// forgotten when the downstream deleted them or never had them.
//
// Pull-through mode (Options.Upstream set): a manifest the downstream
// lacks is pulled first: one request per repository:ref (a lock per key,
// then a second look downstream) pulls the image from the upstream with
// the registry source, filters it and pushes it downstream, then the
// downstream's manifest is served. An image the upstream lacks answers
// 404, any other failure 502. Malformed digests (400) and invalid tags
// (404) are answered without asking anyone.
//
// Concurrency: images (pushed or pulled) run at most Options.Concurrency at
// a time (a semaphore). The Server is an http.Handler safe for concurrent
// requests; Serve owns the http.Server and returns after a shutdown that
// waits (up to Options.ShutdownTimeout) for requests in progress, whose
// image runs use a context that outlives the caller's cancellation until
// that bound. Received blobs are kept until Close, which removes them, or
// until deleted.
//
// The proxy command (listen.go): ListenAddr and ParseUpstream read its
// --listen and --upstream forms, and ListenAndServe makes the Server,
// listens and serves until the context is cancelled.
package proxy
