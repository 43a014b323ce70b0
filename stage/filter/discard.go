package filter

import (
	"context"

	"github.com/occystrap/occystrap/stage"
)

// Discard is a sink that releases every item: the destination of a run that
// only looks at an image (`occystrap search`).
type Discard struct{}

// Properties names the sink in statistics; it takes layers in any order.
func (Discard) Properties() stage.SinkProperties { return stage.SinkProperties{Name: "discard"} }

// Consume releases every item until in closes or the run is cancelled.
func (Discard) Consume(ctx context.Context, in <-chan stage.Item) error {
	for {
		it, ok, err := stage.Recv(ctx, in)
		if !ok {
			return err
		}
		_ = it.Release()
	}
}
