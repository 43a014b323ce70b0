package stage

import "context"

// Recv receives the next item from in. It returns the item and true; false
// and a nil error when in is closed; or false and the context's error when the
// run is cancelled first. It is Send's counterpart for the loops of stages and
// sinks: callers that stop quietly on cancellation ignore the error.
func Recv(ctx context.Context, in <-chan Item) (Item, bool, error) {
	select {
	case it, ok := <-in:
		return it, ok, nil
	case <-ctx.Done():
		return Item{}, false, ctx.Err()
	}
}
