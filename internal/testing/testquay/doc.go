// Package testquay emulates the parts of quay.io's API that occystrap uses,
// in front of the in-process reference registry, so that one test host
// answers both the Quay API and the registry API, as quay.io does.
//
// The API is shaped like quay.io's:
//
//   - GET /api/v1/repository?namespace=NS&public=true[&last_modified=true][&next_page=TOKEN]
//     answers {"repositories":[{"namespace","name","description","is_public",
//     "kind","state","last_modified","popularity","is_starred"}],"next_page":"TOKEN"}
//     in pages of Options.PageSize (quay.io: 100); next_page is an opaque
//     token and is absent on the last page; last_modified (a unix time) is
//     present only when asked for, and null for a repository never pushed.
//   - GET /api/v1/repository/NS/REPO/tag/?specificTag=TAG&onlyActiveTags=true&limit=1
//     answers {"tags":[{"name","reversion","start_ts","manifest_digest",
//     "is_manifest_list","size","last_modified"}],"page":1,"has_additional":false};
//     an unknown tag gives an empty "tags" list, an unknown repository a 404
//     with quay's error body ({"detail","error_message","error_type","title",
//     "type","status"}).
//   - With Options.Token set, an API request without "Authorization: Bearer
//     <Token>" gets quay's 401 (error_type "invalid_token").
//
// Every other path (/v2/..., /token) goes to the wrapped registry.
//
// Use:
//
//	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{})
//	corpus, err := q.Seed(ctx, reg, testquay.Corpus{Namespace: "openstack.kolla",
//		Images: 50, Groups: 5, Common: 1, Group: 2, Own: 1, Tag: "2025.1-debian-bookworm"})
//	// pull with quay://openstack.kolla/*:2025.1-debian-bookworm?host=<reg.Host>
//	// trusting reg.RootCAs(); then q.BlobGets(d) counts GETs of a blob.
//
// Start starts the registry (testregistry.Start) with the emulator as its
// outermost handler wrapper (inside any Wrap given in the registry options,
// so injected latency or faults apply to the API too); NewRegistry does the
// same without a testing.TB (the benchmark harness uses it) and leaves
// closing the registry to the caller. New plus Wrap does the same by hand. Seed pushes a corpus of N images in G groups: every image has
// Common layers shared by all, Group layers shared by its group (image i is in
// group i mod G), and Own layers of its own; it registers each image's
// repository and tag with the emulator. AddRepo and AddTag register
// repositories (with or without tags) directly, e.g. many repositories
// lacking the wanted tag for resolution tests.
//
// Counters (Requests, APIRequests, BlobGets, ManifestGets) count what
// reached the server, retries included. A Server is safe for concurrent use.
package testquay
