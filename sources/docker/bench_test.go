package docker_test

import (
	"context"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	dockersrc "github.com/occystrap/occystrap/sources/docker"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// BenchmarkEmitToFiles reads a ~100 MB image (5 layers of 20 MB of random
// data) out of the engine and copies every layer into a file, as dir://
// does: the whole docker:// input path, engine stream included.
func BenchmarkEmitToFiles(b *testing.B) {
	testdocker.BenchEmitToFiles(b, func(ctx context.Context, c *dockerclient.Client, ref, tmp string) (testdocker.Source, error) {
		return dockersrc.Open(ctx, c, ref, dockersrc.Options{TempDir: tmp})
	})
}
