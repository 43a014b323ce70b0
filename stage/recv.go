package stage

import "context"

// Recv receives the next item from in. It returns the item and true; false
// and a nil error when in is closed and the run is not cancelled (every item
// of a complete image has arrived); or false and the context's error when the
// run is cancelled, before or at the close. It is Send's counterpart for the
// loops of stages and sinks: callers that stop quietly on cancellation ignore
// the error, but a sink must not finish its output after a false with an error.
//
// The engine cancels a run before it closes the channel of a component that
// failed, so a close that follows a failure is always reported as the
// cancellation.
func Recv(ctx context.Context, in <-chan Item) (Item, bool, error) {
	select {
	case it, ok := <-in:
		if !ok {
			if err := ctx.Err(); err != nil {
				return Item{}, false, err
			}
		}
		return it, ok, nil
	case <-ctx.Done():
		return Item{}, false, ctx.Err()
	}
}
