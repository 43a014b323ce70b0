// Package testdocker gives tests a client of the real Docker engine that
// .ci/run starts (Debian's docker.io, on a private socket named by
// OCCYSTRAP_TEST_DOCKER_SOCK). Outside CI, a test without that engine is
// skipped; in CI (CI=true) its absence fails the test, so that nothing which
// needs Docker silently stops running.
package testdocker
