// Package docker is the docker:// output: it loads one image into a local
// Docker engine over the Engine API on its unix socket
// (docker://IMAGE[:TAG][?socket=PATH]).
//
// The sink writes the docker-save archive of sinks/tarball (config,
// `<layer>/layer.tar` in order, manifest.json last) straight into the body of
// POST /images/load through a pipe: nothing is written to disk, and the
// engine reads the archive while the layers still arrive. It declares Ordered
// in its Properties, as the archive holds the layers in order.
// manifest.json's RepoTags is the destination's full name and tag, so `docker
// load` tags the image IMAGE:TAG exactly as given (the original used the
// name's last path part, and its source's name). The engine's JSON-lines
// answer is read to its end; a line with an error fails the sink with the
// engine's message.
//
// Verify inspects IMAGE:TAG and checks that its Id is the sha256 of the
// config that was loaded.
//
// An Output holds one image (a multi-image run opens one per image). The
// sink's two goroutines (archive writer, load request) are owned by a conc
// pool that Consume waits for. Output methods are safe for concurrent use.
package docker
