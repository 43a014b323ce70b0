// Command occystrap moves container images between registries, Docker,
// tarballs and directories, through filters, with every stage overlapping.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/logging"
	"github.com/occystrap/occystrap/internal/platform"
	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/sources/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Globals are the options that go before the subcommand. Each one keeps the
// original occystrap's name, short form, environment variable and default.
type Globals struct {
	Verbose    bool             `env:"OCCYSTRAP_VERBOSE" help:"Log occystrap's own debug messages."`
	Debug      bool             `help:"Log debug messages from everything, libraries included."`
	LogFormat  string           `name:"log-format" env:"OCCYSTRAP_LOG_FORMAT" enum:"auto,json,console" default:"auto" help:"Log format on stderr: json lines, a readable console form, or auto (console on a terminal, json otherwise)."`
	Parallel   int              `short:"j" env:"OCCYSTRAP_PARALLEL" default:"4" help:"Layers processed at once per image."`
	TempDir    string           `name:"temp-dir" env:"OCCYSTRAP_TEMP_DIR" completion:"dir" help:"Directory for temporary files (default: the system's)."`
	Verify     bool             `negatable:"" env:"OCCYSTRAP_VERIFY" default:"true" help:"Check the output after process writes it."`
	VerifyFull bool             `name:"verify-full" env:"OCCYSTRAP_VERIFY_FULL" help:"Like --verify, and re-read the data written."`
	Version    kong.VersionFlag `help:"Print the version and exit."`

	OS            string        `name:"os" default:"linux" help:"Operating system to choose from a manifest list."`
	Architecture  string        `default:"amd64" help:"CPU architecture to choose from a manifest list (arm64 means arm64/v8, arm means arm/v7, as containerd matches)."`
	Variant       string        `help:"CPU variant to choose from a manifest list."`
	Platform      string        `env:"OCCYSTRAP_PLATFORM" placeholder:"OS/ARCH[/VARIANT]" help:"Platform to choose from a manifest list; wins over --os, --architecture and --variant."`
	AllPlatforms  bool          `name:"all-platforms" help:"registry:// to registry:// only: copy a whole manifest list (every platform), keeping its digest."`
	Username      string        `env:"OCCYSTRAP_USERNAME" help:"Registry user name."`
	Password      string        `env:"OCCYSTRAP_PASSWORD" help:"Registry password."`
	PasswordStdin bool          `name:"password-stdin" help:"Read the registry password from the first line of stdin."`
	Insecure      bool          `env:"OCCYSTRAP_INSECURE" help:"Talk to registries over plain HTTP (localhost and 127.0.0.0/8 fall back to it without this flag)."`
	Retries       int           `env:"OCCYSTRAP_RETRIES" default:"3" help:"Retries of a failed HTTP request."`
	RateLimit     rateLimit     `name:"rate-limit" env:"OCCYSTRAP_RATE_LIMIT" help:"Most HTTP requests per second, shared by everything, or auto: halve on 429/503, grow back when quiet (default: unlimited)."`
	StallTimeout  time.Duration `name:"stall-timeout" env:"OCCYSTRAP_STALL_TIMEOUT" default:"60s" help:"Fail a download that receives nothing, or an upload the server takes nothing of, for this long (a blob download is then resumed like a cut connection)."`
	MaxRetryAfter time.Duration `name:"max-retry-after" env:"OCCYSTRAP_MAX_RETRY_AFTER" default:"60s" help:"Longest wait a registry's Retry-After can ask for; a longer one is cut to this, with a warning."`
	ImageParallel int           `name:"image-parallel" short:"J" env:"OCCYSTRAP_IMAGE_PARALLEL" default:"3" help:"Images processed at once for multi-image sources."`
	Inflate       string        `env:"OCCYSTRAP_INFLATE" enum:"auto,go,isal" default:"auto" help:"Gzip decompression: isal (ISA-L: libisal in process in a build with the isal tag, else igzip), go, or auto (isal when it is there)."`
	Compression   string        `env:"OCCYSTRAP_COMPRESSION" enum:"gzip,zstd" default:"gzip" help:"Layer compression for registry output: gzip or zstd."`
	LayerCache    string        `name:"layer-cache" env:"OCCYSTRAP_LAYER_CACHE" completion:"file" help:"JSON file remembering pushed layers, to skip them next time."`
	OutputFormat  string        `name:"output-format" short:"O" enum:"text,json" default:"text" help:"Output of info, check, search and ls: text or json."`

	// The ones below are this project's own (see docs/usage.md).
	TLSVerify bool   `name:"tls-verify" negatable:"" env:"OCCYSTRAP_TLS_VERIFY" default:"true" help:"Verify registries' TLS certificates; --tls-verify=false accepts any (a self-signed registry)."`
	CAFile    string `name:"ca-file" env:"OCCYSTRAP_CA_FILE" type:"existingfile" completion:"file" placeholder:"PEM" help:"Also trust the certificates in this PEM file (a private CA)."`
	Quiet     bool   `short:"q" env:"OCCYSTRAP_QUIET" help:"Print only errors and the summary: no progress, no info logs."`

	ProgressInterval time.Duration `name:"progress-interval" env:"OCCYSTRAP_PROGRESS_INTERVAL" default:"30s" help:"Period of the progress event when stderr is not a live terminal line; 0 turns it off."`
}

// CLI is the whole command line.
type CLI struct {
	Globals

	Process ProcessCmd `cmd:"" help:"Move an image from SOURCE to DESTINATION through filters."`
	Search  SearchCmd  `cmd:"" help:"List the files of an image's layers that match PATTERN."`
	Info    InfoCmd    `cmd:"" help:"Show an image's metadata without reading its layers."`
	Check   CheckCmd   `cmd:"" help:"Check an image's validity; exit 1 when errors are found."`
	Proxy   ProxyCmd   `cmd:"" help:"Serve a registry that filters the images pushed or pulled through it into a downstream registry."`
	Plan    PlanCmd    `cmd:"" help:"Split a multi-image source into shards by shared layers, for process --shard."`
	Ls      LsCmd      `cmd:"" help:"List a repository's tags, or the images a quay:// source resolves to, without copying anything."`

	Help       HelpCmd       `cmd:"" help:"Show a command's flags and examples."`
	Completion CompletionCmd `cmd:"" help:"Print a shell completion script: bash, zsh or fish."`
	Man        ManCmd        `cmd:"" hidden:"" help:"Print the man page (roff)."`

	VersionCmd VersionCmd `cmd:"" name:"version" help:"Print the version, commit and Go version."`

	// The original's deprecated commands, listed apart under "Deprecated".
	Legacy `embed:""`
}

func main() {
	stop := startProfiles(os.Stderr)
	code := runIO(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process exit, for tests: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runIO(args, os.Stdin, stdout, stderr)
}

// runIO is run with stdin given (--password-stdin).
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Everything printed goes through a redactor: stderr (logs, errors,
	// the summary) loses anything that looks like a secret, stdout (data:
	// search results, info) only the secrets the command line holds.
	terminal := isTerminal(stderr)
	errw := redact.NewWriter(stderr)
	outw := redact.NewLiteralWriter(stdout)
	stdout, stderr = outw, errw
	var cli CLI
	parser, err := newParser(&cli, stdout, stderr, func(code int) { panic(exitCode(code)) })
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				c, ok := r.(exitCode)
				if !ok {
					panic(r)
				}
				code = int(c)
			}
		}()
		kctx, err := parser.Parse(args)
		if err == nil {
			err = cli.Globals.applyPlatform()
		}
		if err == nil && cli.PasswordStdin {
			if cli.Password != "" {
				err = errors.New("--password-stdin and --password (or OCCYSTRAP_PASSWORD) both give the password")
			} else {
				cli.Password, err = readPasswordStdin(stdin)
				errw.Add(cli.Password)
				outw.Add(cli.Password)
			}
		}
		if err != nil {
			f := preParseFormat(args, terminal)
			s := newStream(&Globals{LogFormat: map[logging.Format]string{logging.JSON: "json", logging.Console: "console"}[f]}, stderr, terminal)
			code = s.fatal(usage(err), nil, nil)
			return
		}
		secrets := &secretSet{ws: []*redact.Writer{errw, outw}}
		secrets.Add(cli.secrets(args)...)
		sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx := sigCtx
		s := newStream(&cli.Globals, stderr, terminal)
		ctx = s.log.WithContext(ctx)
		app := &app{g: &cli.Globals, stdout: stdout, stderr: stderr, out: s, secrets: secrets}
		removeStaleTemps(ctx, cli.Globals.TempDir)
		// Bind ctx as the interface: kong binds Run arguments by their
		// dynamic type, which would not match a context.Context parameter.
		kctx.BindTo(ctx, (*context.Context)(nil))
		defer app.closeInflater()
		if err := kctx.Run(app); err != nil {
			code = s.fatal(err, app, signalOf(sigCtx))
		}
	}()
	return code
}

// signalOf is the signal that ended ctx (made by signal.NotifyContext),
// or nil.
func signalOf(ctx context.Context) os.Signal {
	c := context.Cause(ctx)
	if c == nil {
		return nil
	}
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		if c.Error() == s.String()+" signal received" {
			return s
		}
	}
	return nil
}

// removeStaleTemps removes the spool files that runs killed before they
// could clean up (SIGKILL, a power cut) left in the temporary directory;
// those of live runs stay (package internal/tempname).
func removeStaleTemps(ctx context.Context, dir string) {
	if dir == "" {
		dir = os.TempDir()
	}
	removed, err := beneath.RemoveMatching(dir, ".", 0, tempname.Stale, nil)
	log := zerolog.Ctx(ctx)
	for _, r := range removed {
		log.Debug().Str("path", filepath.Join(dir, r)).Msg("Removed a stale temporary file")
	}
	if err != nil {
		log.Debug().Err(err).Msg("Could not remove every stale temporary file")
	}
}

type exitCode int

// newParser is the command line's kong parser: the model help, completion
// and the man page are generated from.
func newParser(cli *CLI, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("occystrap"),
		kong.Description("Fast container image pipelines: registries, Docker, tarballs and directories."),
		kong.UsageOnError(),
		kong.Help(printHelp),
		// -j -1 reaches Validate as -1, not as an unknown short flag.
		kong.WithHyphenPrefixedParameters(true),
		kong.Vars{"version": versionText()},
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ExplicitGroups([]kong.Group{{
			Key:         legacyGroup,
			Title:       "Deprecated",
			Description: "The original occystrap's old commands, for existing scripts: each warns and runs as the process or search command named.",
		}}),
	)
}

// applyPlatform makes --platform (or OCCYSTRAP_PLATFORM), when given, the
// --os, --architecture and --variant every command reads.
func (g *Globals) applyPlatform() error {
	if g.Platform == "" {
		return nil
	}
	p, err := platform.Parse(g.Platform)
	if err != nil {
		return fmt.Errorf("--platform: %w", err)
	}
	g.OS, g.Architecture, g.Variant = p.OS, p.Architecture, p.Variant
	return nil
}

// errQuiet ends a command with exit code 1 and no error line: the command
// has already printed its outcome (check finding errors).
var errQuiet = errors.New("exit 1")

// app is what every command's Run receives besides the context.
type app struct {
	g      *Globals
	stdout io.Writer
	stderr io.Writer
	net    netState // the process's one HTTP transport, made on first use
	// inflate is the run's one gzip inflater, chosen on first use.
	inflate inflateState
	// secrets learns the secrets the transport comes to hold (Docker
	// credentials, tokens): they are masked in stdout and stderr too.
	secrets *secretSet
	// filterSpecs are the -f specs of the command (the layer cache's
	// filters hash depends on them).
	filterSpecs []string
	// out is the event stream on stderr (stream.go).
	out *stream
	// uriCreds are the hosts a URI of the command line gave credentials
	// for (for the hint of a 401).
	credMu   sync.Mutex
	uriCreds map[string]bool
}

// secrets are the secret values the command line holds (passwords from
// flags or the environment, and those in URIs), for the redactors.
func (cli *CLI) secrets(args []string) []string {
	out := []string{cli.Password, cli.Proxy.UpstreamPassword}
	if _, _, pass := proxy.ParseUpstream(cli.Proxy.Upstream); pass != "" {
		out = append(out, pass)
	}
	for _, a := range args {
		out = append(out, redact.URISecrets(a)...)
	}
	return out
}

// secretSet makes a secret known to every redacting writer.
type secretSet struct{ ws []*redact.Writer }

// Add makes secrets known; a nil set (tests that make an app by hand)
// ignores them.
func (s *secretSet) Add(secrets ...string) {
	if s == nil {
		return
	}
	for _, w := range s.ws {
		w.Add(secrets...)
	}
}

// isTerminal reports whether w, or the writer a redactor writes to, is a
// terminal.
func isTerminal(w io.Writer) bool {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
