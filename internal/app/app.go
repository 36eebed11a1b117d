// Package app is tenantdrift's composition root: it parses a command line,
// builds every dependency by constructor and runs the command. Tests drive
// whole commands in-process through Main.
package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/redact"
)

// Exit codes, shared by every command.
const (
	ExitOK    = 0 // success, no drift at or above --fail-on
	ExitError = 1 // the command could not do its job
	ExitDrift = 2 // drift found
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool)
	Now       func() time.Time
	Version   string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, r *runtime, args []string) int
}

func commands() []command {
	return []command{
		{"audit", "run the checks once, print a report, exit 0 (clean), 2 (drift) or 1 (error)", runAudit},
		{"serve", "run the checks on their schedules; serve /metrics, /healthz and /readyz", runServe},
		{"repair", "plan repairs of registry drift; with --apply, apply what the policy allows", runRepair},
		{"validate", "check a configuration file and report every problem in it", runValidate},
		{"doctor", "check that the landlord, state store, APP_KEY and Slack work, one line each", runDoctor},
		{"demo", "start a throwaway PostgreSQL with a drifted registry and audit it", runDemo},
		{"version", "print the version", runVersion},
	}
}

// runtime carries what every command shares.
type runtime struct {
	env      Env
	redactor *redact.Redactor
	stdout   io.Writer // redacted
	stderr   io.Writer // redacted
	logger   *slog.Logger

	progressShown bool
}

// Main runs tenantdrift with args (without the program name) and returns
// the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Version == "" {
		env.Version = "dev"
	}
	r := &runtime{env: env, redactor: &redact.Redactor{}}
	r.stdout = r.redactor.Writer(env.Stdout)
	r.stderr = r.redactor.Writer(env.Stderr)
	if v, ok := env.LookupEnv("TENANTDRIFT_LANDLORD_DSN"); ok {
		r.redactor.AddDSN(v)
	}

	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		r.usage(r.stdout)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, r, args[1:])
		}
	}
	fmt.Fprintf(r.stderr, "tenantdrift: unknown command %q; run 'tenantdrift --help' for the list\n", args[0])
	return ExitError
}

func (r *runtime) usage(w io.Writer) {
	fmt.Fprintf(w, "tenantdrift keeps a database-per-tenant registry honest.\n\nUsage: tenantdrift <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'tenantdrift <command> --help' for a command's flags.\n")
}

// logFlags are the flags every command takes.
type logFlags struct {
	level  string
	format string
}

func (r *runtime) newFlagSet(name, synopsis string, lf *logFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(r.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tenantdrift %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	lvl, _ := r.env.LookupEnv("TENANTDRIFT_LOG_LEVEL")
	fmtv, _ := r.env.LookupEnv("TENANTDRIFT_LOG_FORMAT")
	fs.StringVar(&lf.level, "log-level", or(lvl, "info"), "log level: debug, info, warn or error (env TENANTDRIFT_LOG_LEVEL)")
	fs.StringVar(&lf.format, "log-format", or(fmtv, "text"), "log format: text or json (env TENANTDRIFT_LOG_FORMAT)")
	return fs
}

// parse parses args and builds the logger. It returns false with the exit
// code when the command should stop (help, or a usage error).
func (r *runtime) parse(fs *flag.FlagSet, lf *logFlags, args []string) (int, bool) {
	// The flag package prints its error and the usage itself; collect
	// them, so that asked-for help goes to stdout once, and a usage error
	// to stderr.
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	err := fs.Parse(args)
	fs.SetOutput(r.stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = r.stdout.Write(usage.Bytes())
			return ExitOK, false
		}
		_, _ = r.stderr.Write(usage.Bytes())
		return ExitError, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(r.stderr, "tenantdrift %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return ExitError, false
	}
	logger, err := newLogger(r.stderr, lf.level, lf.format)
	if err != nil {
		fmt.Fprintf(r.stderr, "tenantdrift %s: %v\n", fs.Name(), err)
		return ExitError, false
	}
	r.logger = logger
	return 0, true
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid log level %q from --log-level or TENANTDRIFT_LOG_LEVEL (use debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log format %q from --log-format or TENANTDRIFT_LOG_FORMAT (use text or json)", format)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func runVersion(_ context.Context, r *runtime, args []string) int {
	var lf logFlags
	fs := r.newFlagSet("version", "version", &lf)
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	fmt.Fprintf(r.stdout, "tenantdrift %s\n", r.env.Version)
	return ExitOK
}
