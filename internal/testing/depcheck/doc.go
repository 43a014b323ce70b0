// Package depcheck holds the test that keeps the module's import arrows
// pointing one way (as go-containerregistry's depcheck_test.go does):
//
//   - a package under internal/ (test support under internal/testing/
//     aside) is a leaf: it imports no package of this module;
//   - no package under sources/, sinks/, stage/ or transport/ depends on
//     cmd/;
//   - the stage package (the contract) depends on no source, sink or
//     transport;
//   - no sink depends on a source;
//   - no product package depends on test support (internal/testing/...),
//     except the conformance suite stage/stagetest.
package depcheck
