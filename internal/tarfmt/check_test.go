package tarfmt

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/tartest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	good := tartest.Layer()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		data []byte
		want error // nil: no error
	}{
		{name: "whole tar", ctx: context.Background(), data: good},
		{name: "empty tar", ctx: context.Background(), data: make([]byte, 1024)},
		{name: "cut in a member", ctx: context.Background(), data: good[:512+100], want: io.ErrUnexpectedEOF},
		{name: "bad header", ctx: context.Background(), data: bytes.Repeat([]byte{'x'}, 512), want: tar.ErrHeader},
		{name: "cancelled", ctx: cancelled, data: good, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.ctx, bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}
