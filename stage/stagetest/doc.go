// Package stagetest helps the tests of outputs: it feeds items to a sink
// through the engine (Run, WriteImage; Items and MemBody make the items, from
// layer tars that internal/testing/fixture builds), lists a written tree in a
// normalized form (path, type, mode, size, sha256) and compares listings
// with golden files under testdata/ (go test -update rewrites them). Main
// is their TestMain and BenchItems their benchmark image.
// RunSinkConformance (conformance.go) is the contract's suite that every
// sink's tests run: order, skipped layers, manifest items, a second or a
// missing config, cancellation releasing every body and leaving no
// goroutine.
//
// It is imported by tests only. Its functions are safe to call from parallel
// tests.
package stagetest
