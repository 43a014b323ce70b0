package testquay

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

func get(t *testing.T, c *http.Client, u, token string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestEmulator(t *testing.T) {
	q, reg := Start(t, Options{PageSize: 3, Token: "sekrit"}, testregistry.Options{})
	ctx := context.Background()
	seeded, err := q.Seed(ctx, reg, Corpus{Namespace: "ns", Images: 5, Groups: 2, Common: 1, Group: 1, Own: 1, Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	never := Repo{Namespace: "ns", Name: "zz-empty"}
	q.AddRepo(never)
	q.AddRepo(Repo{Namespace: "other", Name: "x"})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: reg.RootCAs()}}}

	// Shared layers: the common one by all 5, group layers by 3 and 2.
	var counts []int
	for _, n := range seeded.Shared {
		counts = append(counts, n)
	}
	if len(seeded.Shared) != 3 {
		t.Errorf("shared layers %v, want 3", counts)
	}

	type page struct {
		Repositories []struct {
			Namespace    string `json:"namespace"`
			Name         string `json:"name"`
			LastModified *int64 `json:"last_modified"`
			IsPublic     bool   `json:"is_public"`
		} `json:"repositories"`
		NextPage string `json:"next_page"`
	}
	var names []string
	var lms []int64
	next := ""
	for pages := 0; ; pages++ {
		v := url.Values{"namespace": {"ns"}, "public": {"true"}, "last_modified": {"true"}}
		if next != "" {
			v.Set("next_page", next)
		}
		var p page
		if code := get(t, c, reg.URL+"/api/v1/repository?"+v.Encode(), "sekrit", &p); code != 200 {
			t.Fatalf("list: %d", code)
		}
		for _, r := range p.Repositories {
			names = append(names, r.Name)
			lm := int64(-1)
			if r.LastModified != nil {
				lm = *r.LastModified
			}
			lms = append(lms, lm)
		}
		if p.NextPage == "" {
			if pages != 1 {
				t.Errorf("pages = %d, want 2", pages+1)
			}
			break
		}
		next = p.NextPage
	}
	want := []string{"image-000", "image-001", "image-002", "image-003", "image-004", "zz-empty"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("names (-want +got):\n%s", d)
	}
	if lms[5] != -1 || lms[0] != time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("last_modified %v", lms)
	}

	var tags struct {
		Tags []struct {
			Name           string `json:"name"`
			StartTS        int64  `json:"start_ts"`
			ManifestDigest string `json:"manifest_digest"`
		} `json:"tags"`
		Page          int  `json:"page"`
		HasAdditional bool `json:"has_additional"`
	}
	tagURL := func(repo, tag string) string {
		return reg.URL + "/api/v1/repository/ns/" + repo + "/tag/?specificTag=" + tag + "&onlyActiveTags=true&limit=1"
	}
	if code := get(t, c, tagURL("image-001", "v1"), "sekrit", &tags); code != 200 || len(tags.Tags) != 1 ||
		tags.Tags[0].ManifestDigest != seeded.Images[1].Image.Digest.String() || tags.Page != 1 {
		t.Errorf("tag: %d %+v", code, tags)
	}
	tags.Tags = nil
	if code := get(t, c, tagURL("image-001", "v2"), "sekrit", &tags); code != 200 || len(tags.Tags) != 0 {
		t.Errorf("missing tag: %d %+v", code, tags)
	}
	var e struct {
		ErrorType string `json:"error_type"`
		Status    int    `json:"status"`
	}
	if code := get(t, c, tagURL("nope", "v1"), "sekrit", &e); code != 404 || e.ErrorType != "not_found" {
		t.Errorf("unknown repo: %d %+v", code, e)
	}
	if code := get(t, c, tagURL("image-001", "v1"), "wrong", &e); code != 401 || e.ErrorType != "invalid_token" {
		t.Errorf("bad token: %d %+v", code, e)
	}
	// The registry answers on the same host; counting works.
	d := seeded.Images[0].Image.Layers[0].Digest
	if code := get(t, c, reg.URL+"/v2/ns/image-000/blobs/"+d.String(), "", nil); code != 200 {
		t.Errorf("blob GET: %d", code)
	}
	if n := q.BlobGets(d); n != 1 {
		t.Errorf("BlobGets = %d, want 1", n)
	}
}
