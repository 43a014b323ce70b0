//go:build tools

package proxy

// The OCI distribution-spec conformance suite, which conformance_test.go
// builds with `go test -c` and runs against the proxy. This import keeps
// the module (and its checksums) in go.mod, so `go mod download` fetches it.
import _ "github.com/opencontainers/distribution-spec/conformance"
