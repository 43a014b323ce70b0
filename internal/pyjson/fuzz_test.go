package pyjson

import (
	"bytes"
	"testing"
)

// FuzzDecode: any document either fails to decode or decodes to a value
// whose encoding decodes and encodes to the same bytes (the config rewrite
// re-serializes hostile configs this way).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[1.5,"x\u001b",null,true,{"z":{}}],"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}`))
	f.Add([]byte(`1e400`))
	f.Add([]byte(`"\ud800"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		once, err := Marshal(v, Options{})
		if err != nil || bytes.Contains(once, []byte("Infinity")) {
			// Numbers beyond float64 come out as Python writes them,
			// Infinity, which is not JSON: nothing to read back.
			return
		}
		w, err := Decode(once)
		if err != nil {
			t.Fatalf("our own output %q does not decode: %v", once, err)
		}
		twice, err := Marshal(w, Options{})
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point: %q then %q (%v)", once, twice, err)
		}
	})
}
