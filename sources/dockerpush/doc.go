// Package dockerpush is the dockerpush:// input: an image held by a local
// Docker engine, read by having the engine push it to a tiny registry that
// occystrap serves itself (dockerpush://IMAGE[:TAG][?socket=PATH]; default
// socket /var/run/docker.sock, or DOCKER_HOST=unix://PATH).
//
// Why: `docker save` (the docker:// input) is one sequential stream, while
// a push sends the layers as separate blobs, several at once. The price is
// that the engine gzips every layer and this package gunzips it again, so it
// pays off when the engine has cores to spare.
//
// Sequence, as the original occystrap does it: Open inspects the image (an
// unknown image fails with "Image not found: IMAGE:TAG") and learns its
// config digest (Id) and the layers' DiffIDs. Emit serves a registry over
// HTTPS on 127.0.0.1:0, tags the image 127.0.0.1:PORT/IMAGE:TAG
// (POST /images/{ref}/tag), asks the engine to push that name
// (POST /images/{name}/push, X-Registry-Auth: e30=; the answer is read as
// JSON lines to its end, and a line with an error key fails the run), waits
// up to ten seconds for the manifest after the push is over, and removes the
// temporary name again (DELETE /images/{name}?noprune=true), whatever
// happened.
//
// TLS: the certificate is self-signed, made in memory with crypto/x509
// (ECDSA P-256, CN and IP SAN 127.0.0.1, valid for a day), so unlike the
// original no openssl binary is needed and no key touches the disk. The
// engine accepts it because it treats registries on 127.0.0.0/8 as
// insecure (no certificate verification); HTTPS rather than plain HTTP
// because some engines do not fall back from HTTPS to HTTP.
//
// The embedded registry is package sources/receiver, the push side shared
// with `occystrap proxy`, with this package's ingest plugged in: GET /v2/;
// HEAD .../blobs/DIGEST (200 once received, else 404; GET of a blob is not
// served, its compressed bytes are not kept); POST .../blobs/uploads/
// (202, Location, Docker-Upload-UUID, Range 0-0); PATCH (202, Range
// 0-N-1; a body cut off ends the upload); PUT ?digest= (the sha256 of the
// bytes is checked: 201 with Location and Docker-Content-Digest, or 400 on
// a mismatch or a missing digest); PUT .../manifests/TAG (201 with
// Docker-Content-Digest; a manifest list is refused with 400 and fails the
// run). Chunked and monolithic uploads both work. Cross-repository mounts
// are not offered (a mount request starts a plain upload). With
// Options.Digests, HEAD answers 200 for the blobs of the layers the output
// already has, by the .digests file (below).
//
// Streaming: each upload's bytes go through a pipe to a spooler goroutine
// that recognises gzip and zstd by their magic bytes, decompresses on the
// fly into a file of TempDir and hashes the result, so the DiffID of a blob
// is known the moment its upload completes and the compressed blob is never
// stored. Since the inspect gave the DiffIDs in order, a finished blob is
// placed in the image at once: layers are sent in Seq order as soon as they
// and every layer before them are complete, while the rest is still being
// pushed. The config (named <Id hex>.json) is sent when it arrives. When the
// manifest comes, every layer's blob is checked against it: the blob was
// received, its DiffID is the config's, and the compression its media type
// names is the one its content had (the original decompresses by media type
// first, then by magic bytes; for anything an engine pushes, both agree).
// Layers are named by their DiffID hex. A layer the image holds twice is
// pushed once and sent twice, sharing one file.
//
// A sink that already has a layer (stage.SinkProperties.Has, by DiffID hex)
// gets it with a nil Body, and its blob is dropped on arrival; the engine
// still pushes it unless the .digests file names its blob, which HEAD then
// reports present.
//
// Ownership: every layer file belongs to the body of the item it was sent
// in (the last Release removes it); files of blobs not sent, and uploads in
// progress, are removed before Emit returns. Layers that complete out of
// order wait in a stage.Ordered. Goroutines: the HTTP server's
// Serve and the spoolers are owned by pools that Emit waits for; the push
// and the collector run in a conc pool whose first error cancels the other.
// A Source runs Emit once.
package dockerpush
