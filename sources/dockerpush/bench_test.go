package dockerpush_test

import (
	"context"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/sources/dockerpush"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// BenchmarkEmitToFiles reads a ~100 MB image (5 layers of 20 MB of random
// data) out of the engine through a push, and copies every layer into a
// file, as dir:// does: the same work as the docker:// input's benchmark of
// the same name, for comparison.
func BenchmarkEmitToFiles(b *testing.B) {
	testdocker.BenchEmitToFiles(b, func(ctx context.Context, c *dockerclient.Client, ref, tmp string) (testdocker.Source, error) {
		return dockerpush.Open(ctx, c, ref, dockerpush.Options{TempDir: tmp})
	})
}
