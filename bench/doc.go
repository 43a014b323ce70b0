// Command bench is occystrap's end-to-end benchmark harness and offline demo.
//
//	go run ./bench                         every scenario, full preset (50 images)
//	go run ./bench --preset small --reps 1 the CI-sized smoke run
//	go run ./bench demo                    the offline demo (quay:// → dir://)
//
// It starts, in-process, the reference registry over TLS with HTTP/2 holding
// a generated Kolla-like corpus, a Quay API emulator on the same host, a
// toxiproxy adding latency (and optionally a bandwidth limit) in front of
// it, and fresh push-destination registries, then runs each scenario with
// occystrap's real CLI binary (built once), the peers found on PATH (crane,
// regctl, skopeo) and a floor (every unique blob fetched once at full
// concurrency; also gunzipped, or also uploaded once, where the scenario
// does that), and prints a table led by ratios, optionally as JSON too.
// See docs/performance.md.
package main
