package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/logging"
	"github.com/occystrap/occystrap/internal/redact"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage/progress"
	"github.com/occystrap/occystrap/transport"
)

// The process's event stream on stderr (docs/logging.md): the logger, the
// printer for status lines and the fatal error, and on a terminal in
// console mode the live progress line every other write erases first.

// stream is what a command writes to stderr through.
type stream struct {
	log      zerolog.Logger
	printer  *logging.Printer
	format   logging.Format
	line     *progress.Line // nil unless console on a terminal
	terminal bool
}

// newStream makes the stream for the globals; stderr is the redacting
// writer, terminal whether the real stderr is one.
func newStream(g *Globals, stderr io.Writer, terminal bool) *stream {
	format, err := logging.ParseFormat(g.LogFormat, terminal)
	if err != nil { // kong's enum has checked it
		format = logging.JSON
	}
	s := &stream{format: format, terminal: terminal}
	w := stderr
	if format == logging.Console && terminal {
		s.line = &progress.Line{W: stderr, Width: logging.Width(unwrapAll(stderr))}
		w = s.line
	}
	level := zerolog.InfoLevel
	switch {
	case g.Debug:
		level = zerolog.TraceLevel
	case g.Verbose:
		level = zerolog.DebugLevel
	case g.Quiet:
		level = zerolog.ErrorLevel
	}
	s.log = logging.New(w, logging.Options{Format: format, Level: level, NoColor: !colour(terminal)})
	s.printer = &logging.Printer{Log: s.log, W: w, Format: format, Quiet: g.Quiet}
	return s
}

// unwrapAll is the writer under any wrappers (redactor, live line).
func unwrapAll(w io.Writer) io.Writer {
	for {
		u, ok := w.(interface{ Unwrap() io.Writer })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// preParseFormat is the log format before the command line is parsed (for
// an error in parsing it): --log-format, else the environment, else auto.
func preParseFormat(args []string, terminal bool) logging.Format {
	v := os.Getenv(logging.EnvFormat)
	for i, a := range args {
		if a == "--" {
			break
		}
		if s, ok := strings.CutPrefix(a, "--log-format="); ok {
			v = s
		} else if a == "--log-format" && i+1 < len(args) {
			v = args[i+1]
		}
	}
	f, err := logging.ParseFormat(v, terminal)
	if err != nil {
		return logging.JSON
	}
	return f
}

// usageError is an error in how occystrap was called (exit code 2): a flag,
// a URI or a filter spec it cannot take.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage marks err, if not nil, as a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	var u *usageError
	if errors.As(err, &u) {
		return err
	}
	return &usageError{err}
}

// usageErrorf is an error in how the command was called.
func usageErrorf(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// Exit codes.
const (
	exitFailure = 1
	exitUsage   = 2
)

// fatal reports err, the error a command ended with, and returns the exit
// code: 2 for a usage error, 128+N when signal N ended the run (130 for
// SIGINT), 1 otherwise.
func (s *stream) fatal(err error, a *app, sig os.Signal) int {
	if errors.Is(err, errQuiet) { // the command printed why
		return exitFailure
	}
	code, msg := exitFailure, "Error"
	var u *usageError
	switch {
	case sig != nil:
		code = 128 + int(sig.(syscall.Signal))
		err = fmt.Errorf("interrupted by %s", sig)
	case errors.As(err, &u):
		code, msg = exitUsage, "Usage error"
	}
	text := redact.Text(redact.Error(err).Error())
	h := hint(err, a)
	if h == "" && code == exitUsage {
		h = "run 'occystrap --help' (or 'occystrap COMMAND --help') for usage"
	}
	s.printer.Fatal(msg, text, logging.Chain(err, redact.Text), h, code)
	return code
}

// hint says what to do about err, or "" (docs/usage.md, "Errors").
func hint(err error, a *app) string {
	msg := err.Error()
	var te *transport.Error
	isT := errors.As(err, &te)
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the registry speaks plain HTTP: add --insecure (or ?insecure=true to its URI)"
	case isT && te.StatusCode == 400 && strings.Contains(te.Body, "HTTP request to an HTTPS server"),
		strings.Contains(msg, "Client sent an HTTP request to an HTTPS server"):
		return "the registry speaks HTTPS: drop --insecure (and ?insecure=true)"
	case errors.Is(err, registrysrc.ErrTagUnknown):
		return "the repository exists but has no such tag: check the tag (the error lists some it has)"
	case errors.Is(err, registrysrc.ErrRepositoryUnknown):
		return "the registry has no repository of that name: check its spelling and namespace (Docker Hub's official images are library/NAME)"
	case isT && te.Has(transport.CodeManifestUnknown):
		return "the registry has no such manifest: check the tag or digest"
	case isT && te.Has(transport.CodeNameUnknown):
		return "the registry has no repository of that name: check its spelling and namespace (Docker Hub's official images are library/NAME)"
	case isT && te.StatusCode == 404:
		return "the registry has no such image: check the host, the repository and the tag"
	case errors.Is(err, transport.ErrUnauthorized):
		host := ""
		if isT {
			host = te.Host
		}
		if host == "" {
			host = hostIn(msg)
		}
		if a != nil && a.credentialsFor(host) {
			return fmt.Sprintf("credentials for %s were found and sent, and the registry refused them: check the user name and password (or token), and that the account may access this repository", orThisRegistry(host))
		}
		return fmt.Sprintf("no credentials were found for %s: give --username with --password or --password-stdin, ?username=&password= on the URI, or log in with docker login", orThisRegistry(host))
	}
	return ""
}

func orThisRegistry(host string) string {
	if host == "" {
		return "this registry"
	}
	return host
}

// hostIn finds the host of the first URL in msg.
func hostIn(msg string) string {
	i := strings.Index(msg, "://")
	if i < 0 {
		return ""
	}
	start := strings.LastIndexAny(msg[:i], " \"'(") + 1
	end := strings.IndexAny(msg[i:], " \"')")
	if end < 0 {
		end = len(msg) - i
	}
	u, err := url.Parse(msg[start : i+end])
	if err != nil {
		return ""
	}
	return u.Host
}

// credentialsFor reports whether the run has credentials for host: from a
// URI of the command line, the flags or environment, or Docker's config.
func (a *app) credentialsFor(host string) bool {
	if a.g.Username != "" || a.g.Password != "" {
		return true
	}
	a.credMu.Lock()
	found := a.uriCreds[host]
	a.credMu.Unlock()
	if found {
		return true
	}
	if t, err := a.transport(); err == nil && host != "" {
		return t.HasCredentials(context.Background(), host)
	}
	return false
}

// noteCredentials records that a URI gave credentials for host.
func (a *app) noteCredentials(host string) {
	a.credMu.Lock()
	defer a.credMu.Unlock()
	if a.uriCreds == nil {
		a.uriCreds = map[string]bool{}
	}
	a.uriCreds[host] = true
}

// readPasswordStdin reads --password-stdin's password: the first line of
// stdin, without its line ending.
func readPasswordStdin(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usage(errors.New("--password-stdin: stdin gave no password"))
	}
	return line, nil
}

// versionText is what `occystrap version` and --version print: the module
// version (or the -X main.version one), the commit and the Go version, from
// the build info.
func versionText() string {
	v, commit, modified, goVersion := version, "unknown", false, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("occystrap %s\ncommit: %s\ngo: %s", v, commit, goVersion)
}

// VersionCmd is `occystrap version`.
type VersionCmd struct{}

// Run prints the version.
func (c *VersionCmd) Run(a *app) error {
	_, err := fmt.Fprintln(a.stdout, versionText())
	return err
}
