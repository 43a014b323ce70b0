// Package proxy is `occystrap proxy`: a plain-HTTP Docker Registry V2 server
// that sits in front of a downstream registry and runs every image that
// passes through it through occystrap's filters.
//
// Push-only mode (no upstream): a client (docker push, crane, occystrap's
// own registry:// output) pushes an image into the proxy. Blob uploads
// (POST, PATCH, PUT ?digest=, monolithic or chunked) land in files of the
// temp dir, compressed as sent, their sha256 checked on the final PUT. When
// the manifest is PUT, the image its manifest names is read back from those
// files as a stage.Source (config, then the layers named by their DiffID
// hex from the config's rootfs.diff_ids) and run through the engine, the
// filters and the registry sink into DOWNSTREAM[/PREFIX]/NAME:TAG. The PUT
// answers 201 with Docker-Content-Digest (the sha256 of the body received)
// once the image is downstream, or 500 when the run failed; a manifest
// list or an OCI index is refused with 400. Accepted manifests are kept by
// tag and by digest and served to HEAD and GET. With no filter that changes
// content, layers are copied to the downstream compressed as received (the
// registry sink's passthrough), and the manifest pushed downstream is the
// one received.
//
// Pull-through mode (Options.Upstream set): GET or HEAD of a manifest asks
// the downstream first; on a 404 one request per repository:tag (a lock
// per key, then a second look downstream) pulls the image from the
// upstream with the registry source, filters it and pushes it downstream,
// then serves the downstream's manifest; a failure answers 502. Blob GETs
// are streamed from the downstream, blob HEADs are asked of it.
//
// Not offered: DELETE, /v2/_catalog, tags/list, cross-repository mounts
// (a ?mount= POST starts a plain upload).
//
// Concurrency: images (pushed or pulled) run at most Options.Concurrency at
// a time (a semaphore). The Server is an http.Handler safe for concurrent
// requests; Serve owns the http.Server and returns after a shutdown that
// waits (up to Options.ShutdownTimeout) for requests in progress, whose
// image runs use a context that outlives the caller's cancellation until
// that bound. Received blobs are kept until Close, which removes them.
package proxy
