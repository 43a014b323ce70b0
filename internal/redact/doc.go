// Package redact is the one place that removes secrets from text before it
// is logged or printed: passwords and tokens in URIs (user:pass@ and query
// options such as password= and token=), Authorization-like HTTP headers,
// "Bearer ..."/"Basic ..." credentials in free text, and any literal secret
// value the command line knows about (flags, environment, URI options).
//
// URI, Text, Header and Error are pure functions, safe for concurrent use.
// A Writer redacts everything written through it (each Write call is
// redacted on its own, which suits zerolog: one event per Write); its
// known-secret set may grow while it is in use and it is safe for
// concurrent use.
package redact
