// Package stagetest helps the tests of outputs: it feeds items to a sink
// through the engine (Run, WriteImage; Items and MemBody make the items, from
// layer tars that internal/testing/fixture builds), lists a written tree in a
// normalized form (path, type, mode, size, sha256) and compares listings
// with golden files under testdata/ (go test -update rewrites them). Main is their TestMain and BenchItems their benchmark
// image.
//
// It is imported by tests only. Its functions are safe to call from parallel
// tests.
package stagetest
