// Package env runs the benchmark's servers in-process: the reference
// registry (internal/testing/testregistry: distribution v3 over TLS with
// HTTP/2, storing on disk) holding the corpus with the Quay API emulator
// (internal/testing/testquay) in front of it on the same host (so
// quay://NS?host=HOST resolves to images of that registry), push-destination
// registries made fresh per run, and an in-process toxiproxy in front of
// each that adds latency (each way) and an optional per-connection bandwidth
// limit.
//
// Every server counts, at the server side (testregistry's Counters),
// requests, accepted connections, TLS handshakes and bytes read and written
// on the wire (TLS included), so a client is measured the same way whoever
// it is. Counters are atomic; a Server is safe for concurrent use. Close
// stops everything Start made.
package env
