package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound is a 404 from the registry.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is a 401 or 403 that authentication could not cure.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDigestMismatch is a blob whose content does not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch is a blob longer or shorter than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrStatus is any other unexpected HTTP status.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrTooLarge is a document (manifest, index, config, token response,
	// Quay API page) larger than its limit or than its declared size.
	ErrTooLarge = errors.New("too large")
	// ErrStalled is a response body that sent nothing for the stall
	// timeout (Options.StallTimeout).
	ErrStalled = errors.New("stalled")
	// ErrOtherHost is a 401 from a host a request was redirected to: the
	// registry's credentials are not offered to it.
	ErrOtherHost = errors.New("credentials are not sent to another host")
)

// Error is a registry's answer that is not a success: its status and the
// errors of the distribution error body ({"errors":[{"code", "message",
// "detail"}]}), as go-containerregistry's transport.Error keeps them. It
// matches ErrNotFound, ErrUnauthorized or ErrStatus with errors.Is, as the
// status says.
type Error struct {
	// What is the call that failed ("fetch manifest of HOST/REPO:TAG").
	What string
	// Method and URL of the request (the URL without its query).
	Method, URL string
	// Host is the registry's host[:port].
	Host       string
	StatusCode int
	Status     string
	// Errors are the registry's error codes and messages, when its body
	// had them.
	Errors []ErrorDetail
	// Body is the start of a body that was not a distribution error.
	Body string
	// Problem is what was wrong with the answer besides or instead of its
	// status ("without a Location", "without a usable challenge").
	Problem string
}

// ErrorDetail is one entry of a distribution error body.
type ErrorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// The distribution error codes: the ones callers branch on, and the ones
// the receivers of package sources/receiver answer with.
const (
	CodeManifestUnknown = "MANIFEST_UNKNOWN"
	CodeNameUnknown     = "NAME_UNKNOWN"
	CodeBlobUnknown     = "BLOB_UNKNOWN"
	CodeUnauthorized    = "UNAUTHORIZED"
	CodeDenied          = "DENIED"
	CodeTooManyRequests = "TOOMANYREQUESTS"

	CodeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	CodeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	CodeDigestInvalid       = "DIGEST_INVALID"
	CodeSizeInvalid         = "SIZE_INVALID"
	CodeNameInvalid         = "NAME_INVALID"
	CodeTagInvalid          = "TAG_INVALID"
	CodeManifestInvalid     = "MANIFEST_INVALID"
	CodeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	CodeUnsupported         = "UNSUPPORTED"
	CodeUnavailable         = "UNAVAILABLE"
	CodeUnknown             = "UNKNOWN"
)

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.What)
	b.WriteString(": ")
	b.WriteString(e.Status)
	if e.Problem != "" {
		b.WriteString(" " + e.Problem)
	}
	if len(e.Errors) == 0 {
		b.WriteString(": ")
		b.WriteString(e.sentinel().Error())
		if e.Body != "" {
			fmt.Fprintf(&b, " (%s)", e.Body)
		}
		return b.String()
	}
	for i, d := range e.Errors {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, ": %s", d.Code)
		if d.Message != "" {
			b.WriteString(": " + d.Message)
		}
		if len(d.Detail) > 0 && string(d.Detail) != "null" && len(d.Detail) < 512 {
			fmt.Fprintf(&b, " (%s)", d.Detail)
		}
	}
	return b.String()
}

func (e *Error) sentinel() error {
	switch e.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	}
	return ErrStatus
}

// Is matches the sentinel of the status.
func (e *Error) Is(target error) bool { return target == e.sentinel() }

// Has reports whether the registry gave one of codes.
func (e *Error) Has(codes ...string) bool {
	for _, d := range e.Errors {
		if slices.Contains(codes, d.Code) {
			return true
		}
	}
	return false
}

// protocolError is an answer the protocol does not allow (a session opened
// without a Location, a 401 without a usable challenge): an *Error matching
// the sentinel of its status (ErrStatus for a success status). It reads and
// closes resp's body.
func protocolError(what string, resp *http.Response, problem string) *Error {
	e := newError(what, resp)
	e.Problem = problem
	return e
}

// newError reads resp's body (at most 64 KiB) into an Error and closes it.
func newError(what string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	e := &Error{What: what, StatusCode: resp.StatusCode, Status: resp.Status}
	if e.Status == "" {
		e.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if req := resp.Request; req != nil && req.URL != nil {
		e.Method, e.Host = req.Method, req.URL.Host
		u := *req.URL
		u.RawQuery, u.User = "", nil
		e.URL = u.String()
	}
	var eb struct {
		Errors []ErrorDetail `json:"errors"`
	}
	if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
		e.Errors = eb.Errors
		return e
	}
	if s := strings.TrimSpace(string(body)); s != "" && utf8.ValidString(s) && !strings.HasPrefix(s, "{") && !strings.Contains(s, "<") {
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Body = s
	}
	return e
}
