package imageinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/pyjson"
)

// TestWriteInfos prints failed images' documents among the others and
// counts them: one JSON array, or texts between "---" lines.
func TestWriteInfos(t *testing.T) {
	m, err := ParseMeta("q/app", "v1", nil, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	infos := []*pyjson.Object{Info(m), ErrorInfo("q/bad", "v1", errors.New("manifest unknown")), Info(m)}
	var js bytes.Buffer
	failed, err := WriteInfos(&js, FormatJSON, infos)
	if err != nil || failed != 1 {
		t.Fatalf("WriteInfos(json) = %d, %v; want 1 failed", failed, err)
	}
	var arr []map[string]any
	if err := json.Unmarshal(js.Bytes(), &arr); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, js.String())
	}
	if len(arr) != 3 || arr[1]["error"] != "manifest unknown" || arr[1]["image"] != "q/bad" {
		t.Errorf("JSON documents: %v", arr)
	}
	var text bytes.Buffer
	if failed, err := WriteInfos(&text, "text", infos); err != nil || failed != 1 {
		t.Fatalf("WriteInfos(text) = %d, %v; want 1 failed", failed, err)
	}
	if n := strings.Count(text.String(), "\n---\n\n"); n != 2 {
		t.Errorf("%d separators between 3 documents:\n%s", n, text.String())
	}
}
