// Package logging makes the process's event stream on stderr: zerolog
// events, one JSON object per line in JSON mode (every one with a stable
// `event` name, RFC 3339 timestamps with milliseconds, no key twice), or
// zerolog's console form for people. docs/logging.md lists every event and
// field, and docs/logging.schema.json is their JSON Schema.
//
// Printer writes the lines a run ends with (status, summary, the fatal
// error): plain text in console mode, as people grep them, and events in
// JSON mode, so that in JSON mode every byte on stderr is JSON.
//
// Setup changes zerolog's global time format once; everything else here
// is safe for concurrent use.
package logging
