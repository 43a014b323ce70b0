package tarfmt

import (
	"bytes"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/tartest"
)

// FuzzRewrite: any input either fails cleanly or rewrites to a tar that
// rewrites to itself.
func FuzzRewrite(f *testing.F) {
	f.Add(tartest.Layer())
	f.Add(fixture.RawTar(fixture.Layer{{Name: "a", PAX: [][2]string{{"atime", "-1.5"}}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if _, err := Rewrite(&out, bytes.NewReader(in), nil); err != nil {
			return
		}
		var again bytes.Buffer
		if _, err := Rewrite(&again, bytes.NewReader(out.Bytes()), nil); err != nil {
			t.Fatalf("rewriting the output failed: %v", err)
		}
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatal("rewrite is not a fixed point")
		}
	})
}
