package stage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/stage"
)

func TestRecv(t *testing.T) {
	t.Parallel()
	item := stage.Item{Seq: 3, Kind: stage.KindLayer, Name: "l3"}
	tests := []struct {
		name    string
		setup   func(in chan stage.Item, cancel context.CancelFunc)
		want    stage.Item
		wantOK  bool
		wantErr error
	}{
		{name: "item", setup: func(in chan stage.Item, _ context.CancelFunc) { in <- item }, want: item, wantOK: true},
		{name: "closed", setup: func(in chan stage.Item, _ context.CancelFunc) { close(in) }},
		{name: "cancelled", setup: func(_ chan stage.Item, cancel context.CancelFunc) { cancel() }, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			in := make(chan stage.Item, 1)
			tt.setup(in, cancel)
			got, ok, err := stage.Recv(ctx, in)
			if ok != tt.wantOK || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Recv = ok %v, err %v; want ok %v, err %v", ok, err, tt.wantOK, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b stage.Body) bool { return a == b })); diff != "" {
				t.Errorf("item (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecvClosedAfterCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	in := make(chan stage.Item)
	cancel()
	close(in)
	// Both are ready; whichever the select picks, a close after a
	// cancellation is the cancellation.
	for range 100 {
		if _, ok, err := stage.Recv(ctx, in); ok || !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv = ok %v, err %v; want the cancellation", ok, err)
		}
	}
}
