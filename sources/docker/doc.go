// Package docker is the docker:// input: an image held by a local Docker
// engine, read over the Engine API on its unix socket
// (docker://IMAGE[:TAG][?socket=PATH]; default socket /var/run/docker.sock,
// or DOCKER_HOST=unix://PATH).
//
// Open inspects the image (GET /images/{ref}/json): an unknown image fails
// with "Image not found: IMAGE:TAG", and the inspect gives the config digest
// (Id) and the layers' DiffIDs (RootFS.Layers). Emit then streams the
// docker-save archive (GET /images/{ref}/get) into a spool file in TempDir,
// read once, sequentially, as the engine sends it.
//
// Emitting early: the legacy layout that Docker before 25 writes puts
// manifest.json last, so the layer order is not known from the archive until
// the end. It is known from the inspect, though: while spooling, each
// `X/layer.tar` (or uncompressed `blobs/sha256/X`) member is hashed, and a
// member whose sha256 is the DiffID of exactly one layer is that layer. Layers
// are emitted in Seq order (a stage.Ordered holds the early ones) as soon as
// they and every layer before them are complete in the spool, so the sink
// works while the rest still streams in.
// The config (`<Id hex>.json`, or `blobs/sha256/<Id hex>`) is emitted when it
// arrives. Bodies read their section of the spool file; each Open has its own
// descriptor, so bodies may be read concurrently, and a copy into a file uses
// copy_file_range.
//
// When the stream ends, the spool is a complete archive and is indexed by
// sources/tarball, which resolves what could not be placed early (a DiffID
// repeated in the image, a layer stored as a link, compressed OCI blobs) and
// gives every remaining layer; names of the layers emitted early are checked
// against the manifest. Names follow the original occystrap: the config is
// named by its path in the archive, a layer by its directory (legacy layout)
// or blob hex (OCI layout).
//
// The spool file is removed by Close, which must come after the run (bodies
// read it). A Source runs Emit once; its goroutines are owned by a conc pool
// that Emit waits for.
package docker
