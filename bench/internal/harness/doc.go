// Package harness runs the benchmark scenarios: each tool (occystrap through
// its real CLI binary, the peers found on PATH, and the floor) is executed as
// a child process, once per repetition, and measured the same way: wall
// time, CPU time and peak RSS from the child's rusage, and requests,
// connections, TLS handshakes and bytes over the wire counted at the servers.
//
// A Scenario says what the images are, how each tool is invoked and how the
// output is checked. Results are summarised as median, min and max per
// metric, printed as a table that leads with ratios (ours / floor, ours /
// each peer) and written as JSON.
//
// Repetitions are interleaved: every tool of a scenario runs once, then
// every tool again, so that the load of a shared machine drifts over all of
// them alike; an A/B comparison (two variants, or two inflaters with
// --inflate isal,go) belongs in one invocation. Where a scenario inflates
// every layer, a second floor also gunzips each blob with Go
// (klauspost/compress): ×gofloor compares with it. Where the destination
// is a registry, a third floor also uploads each blob once to the run's
// destination (floor+upload).
//
// Runs are sequential (the server counters are attributed to one run at a
// time); nothing here is safe for concurrent use.
package harness
