//go:build tools

// Package deps pins the modules every part of the project uses, so that
// work on separate packages shares one go.mod. It is never built.
package deps

import (
	_ "github.com/alecthomas/kong"
	_ "github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/go-retryablehttp"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/klauspost/pgzip"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/rs/zerolog"
	_ "github.com/sourcegraph/conc/pool"
	_ "go.uber.org/goleak"
	_ "golang.org/x/term"
	_ "golang.org/x/time/rate"
)
