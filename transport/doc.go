// Package transport is the one HTTP layer every network path of occystrap
// goes through.
//
// A Transport owns one tuned http.Transport per process (HTTP/2 negotiated by
// ALPN over TLS, HTTP/1.1 otherwise; a keep-alive pool sized from -j and -J)
// plus an HTTP/1.1-only pool for large upload bodies (Request.Bulk: on
// HTTP/2 all uploads to a host would share one connection's flow-control
// window, which the server sets), each wrapped by a retryablehttp.Client (connection errors, 429 and 5xx but
// 501 are retried with exponential backoff and jitter, Retry-After is
// honoured up to Options.MaxRetryAfter), a stall timeout on every response
// body (a read that gets nothing for Options.StallTimeout fails with
// ErrStalled; a blob download then resumes) and on every request body (a
// server that takes none of it for that long), one rate.Limiter shared by
// every request, and counters
// (requests, retries, 429s, rate-limit waits, new connections, TLS handshakes,
// bytes) for the summary and the logs. Hosts whose certificates are not to
// be verified (--tls-verify=false, ?tls_verify=false) go through unverified
// twins of the two pools, which stay empty otherwise. The trusted roots
// (system, SSL_CERT_FILE, SSL_CERT_DIR, Options.CAFile) are loaded by a
// goroutine New starts and Close waits for; a verified handshake waits for
// them only when it checks the server's certificate (with a proxy in the
// environment New loads them itself). A registry on a
// loopback address that answers TLS in plain HTTP is used over plain HTTP
// from then on (the first request is sent again), as docker and crane do.
//
// A Registry is a client of one registry host built on a Transport: it runs
// the authentication flow (anonymous or credentialed bearer tokens, Basic
// challenges, credentials from options, the environment, and Docker's
// config.json with credential helpers), caches tokens per registry and scope,
// and speaks the distribution API (manifests; blobs streamed, verified against
// their digest and resumed with a Range request when a connection drops;
// uploads by PutBlob, whole or in PATCH chunks resumed at the registry's
// offset after a failed chunk, and cross-repository mounts by MountBlob).
// Every document read into memory goes through a size limit (MaxManifest
// for manifests, indexes and Quay API pages, MaxConfig for configs, 1 MiB
// for token responses), and a config is read no further than the size its
// descriptor declares.
//
// Two leaf subpackages name what the rest of the module shares about
// registries: transport/reference parses image references (docker's rules,
// digest-aware), transport/mediatype holds the media types.
//
// A Quay is a client of one Quay host's API (/api/v1) on the same
// Transport: repository listings followed through next_page, and tag checks;
// a 401 is ErrQuayAuth, with the original occystrap's text.
//
// Concurrency: a Transport and its Registry values are safe for concurrent
// use by any number of goroutines, and are meant to be shared by every image
// of a run. Readers returned by Registry.Blob are for one goroutine.
// Authorization headers are never logged and never follow a redirect to
// another host. Credentials for a registry go only to that registry and to
// the token realm named in its own challenges: a 401 from a host a request
// was redirected to is not answered (ErrOtherHost).
package transport
