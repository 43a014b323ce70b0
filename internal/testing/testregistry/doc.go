// Package testregistry runs the reference registry (distribution v3) inside
// a test process, for every test that talks to a registry.
//
// Start gives a registry over TLS with HTTP/2 (or plain HTTP), optionally
// behind a token server or a Basic gate, optionally wrapped by handlers such
// as the shared fault Injector or Latency. Push helpers seed images (random
// layers, single-platform manifests and indexes) straight into the
// in-process app, without the network. Server-side connection counting
// (Registry.NewConns) lets tests assert connection reuse.
//
// Everything is torn down by t.Cleanup. A Registry and an Injector are safe
// for concurrent use.
package testregistry
