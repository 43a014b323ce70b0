// Package receiver is the push side of a registry (the OCI distribution
// API, "V2"), shared by the two places occystrap is pushed to: the
// embedded HTTPS registry a Docker engine pushes to (sources/dockerpush)
// and `occystrap proxy` (sources/proxy). It owns what both answer alike;
// each plugs in where the bytes go (an Ingest) and its manifests.
//
// What a Receiver answers (an http.Handler):
//   - GET and HEAD /v2/: 200 "{}".
//   - Blob uploads, /v2/NAME/blobs/uploads/[ID]: POST starts a session
//     (202, Location, Docker-Upload-UUID, Range 0-0), or mounts a blob the
//     ingest holds in another repository (?mount=&from=: 201), or takes a
//     whole blob in one request (?digest=); PATCH appends a chunk (202 with
//     Range 0-N-1); with Content-Range the chunk must start where the
//     upload ends (416 and nothing appended otherwise, SIZE_INVALID when
//     Content-Length disagrees); PUT ?digest= appends the last chunk
//     (possibly empty) and closes the upload: the sha256 of every byte is
//     checked (400 DIGEST_INVALID otherwise, and only sha256 is taken), the
//     ingest commits the blob, 201 with Location and Docker-Content-Digest;
//     GET gives the upload's status (204 with Range), DELETE cancels it.
//   - Blobs, /v2/NAME/blobs/DIGEST: HEAD and GET of what the ingest holds
//     (GET only of a blob it can open; Range requests too), the user's
//     BlobMissing hook otherwise (default 404 BLOB_UNKNOWN); DELETE is the
//     user's DeleteBlob hook (default 405).
//   - Manifests, /v2/NAME/manifests/REF: the reference is checked (a
//     malformed digest 400 DIGEST_INVALID; an invalid tag 400 TAG_INVALID
//     for a PUT, 404 MANIFEST_UNKNOWN otherwise), then the user's Manifest
//     hook answers (default 404 MANIFEST_UNKNOWN).
//   - Anything else under /v2/ is 404 NAME_INVALID, outside it 404
//     UNSUPPORTED; a method a path does not take is 405 with Allow.
//
// Names and references follow the distribution spec's grammar
// (NamePattern); errors are the distribution error body
// ({"errors":[{"code","message"}]}, messages redacted) with transport's
// error codes; every answer carries Docker-Distribution-API-Version.
//
// Sessions: the receiver keeps each upload's repository, byte count and
// running sha256, and passes the bytes to the Upload its Ingest began. A
// chunk whose body breaks off keeps the bytes that arrived when
// Options.KeepCut is set (the client asks the status and goes on from its
// Range, as the proxy allows), and ends the upload otherwise. An Upload's
// Write error ends the upload: one wrapping ErrStorage (the ingest's own
// disk) answers 500 UNKNOWN, any other refuses the content (400
// BLOB_UPLOAD_INVALID). An upload left unused for Options.UploadIdle is
// dropped when the next one starts.
//
// Concurrency: a Receiver is safe for concurrent requests; the requests of
// one upload are serialized. Close refuses new requests (503 UNAVAILABLE),
// waits for those in progress, then aborts the uploads left, so an Upload
// is never called concurrently with itself. The receiver starts no
// goroutine.
package receiver
