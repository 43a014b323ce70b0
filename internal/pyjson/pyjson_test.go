package pyjson

import (
	"testing"
)

func TestFormatFloat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{1, "1.0"},
		{-1.5, "-1.5"},
		{0.1, "0.1"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{1e16, "1e+16"},
		{1234567890123456, "1234567890123456.0"},
		{12345678901234567, "1.2345678901234568e+16"},
		{1.5e300, "1.5e+300"},
		{123.456, "123.456"},
	}
	for _, tt := range tests {
		if got := FormatFloat(tt.in); got != tt.want {
			t.Errorf("FormatFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		sort bool
		want string
	}{
		{"order kept", `{"b":1,"a":[1,2.50,"x"],"c":{"z":null,"y":true}}`, false,
			`{"b": 1, "a": [1, 2.5, "x"], "c": {"z": null, "y": true}}`},
		{"sorted", `{"b":1,"a":{"z":false,"y":1e2}}`, true,
			`{"a": {"y": 100.0, "z": false}, "b": 1}`},
		{"ascii escapes", `{"k":"é\u0001\"\\\n😀\u007f/"}`, false,
			`{"k": "\u00e9\u0001\"\\\n\ud83d\ude00` + "\x7f" + `/"}`},
		{"big int", `[123456789012345678901234567890, -0]`, false, `[123456789012345678901234567890, 0]`},
		{"duplicate key", `{"a":1,"b":2,"a":3}`, false, `{"a": 3, "b": 2}`},
		{"empty", `{"a":{},"b":[]}`, false, `{"a": {}, "b": []}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(v, Options{SortKeys: tt.sort})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{`, `{"a":1} x`, `[1,]`, ``} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q): no error", in)
		}
	}
}

func TestMarshalGoValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"strings", []string{"a", "é"}, `["a", "\u00e9"]`},
		{"empty strings", []string{}, `[]`},
		{"mixed list", []any{1, int64(2), 2.5, "x", nil, []string{"y"}}, `[1, 2, 2.5, "x", null, ["y"]]`},
		{"map sorted", map[string]any{"b": true, "a": []any{}}, `{"a": [], "b": true}`},
	}
	for _, tt := range tests {
		got, err := Marshal(tt.in, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
