// Package testregistry runs the reference registry (distribution v3) inside
// a test process, for every test that talks to a registry.
//
// Start gives a registry over TLS with HTTP/2 (or plain HTTP), optionally
// behind a token server or a Basic gate, optionally wrapped by handlers such
// as the shared fault Injector or Latency. NewImage generates images (random
// layers built by internal/testing/fixture); the Push helpers seed images,
// single-platform manifests and indexes straight into the in-process app,
// without the network. Server-side connection counting
// (Registry.NewConns) lets tests assert connection reuse.
//
// Start tears everything down by t.Cleanup; New, for callers without a
// testing.TB (the benchmark harness), leaves that to Close. Counters gives
// the server-side totals (requests, connections, TLS handshakes, bytes on
// the wire). A Registry and an Injector are safe for concurrent use.
package testregistry
