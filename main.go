// Command streamd moves live camera and file video through Apache Kafka into
// web browsers. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/streamd/streamd/pkg/app"
	"github.com/streamd/streamd/pkg/bench"
	"github.com/streamd/streamd/pkg/config"
	"github.com/streamd/streamd/pkg/redact"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := bench.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:]))
}

// setFlags collects repeated --set key=value flags.
type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }
func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want key=value, such as http.listen=:9090")
	}
	s[k] = val
	return nil
}

func run(args []string) int {
	// Credentials in URLs never reach the logs, not even through the C
	// libraries' own messages (OpenCV quotes a camera URL it cannot open).
	if restore, err := redact.FilterStderr(); err == nil {
		defer restore()
	}
	fs := flag.NewFlagSet("streamd", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML config file (default: built-in defaults)")
	role := fs.String("role", "", "the role: "+strings.Join(config.Roles(), ", ")+" (overrides the config's role)")
	listen := fs.String("listen", "", "HTTP listen address (overrides http.listen)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	readyFile := fs.String("ready-file", "", "once serving, write this file with JSON {pid, role, http, broker} (for scripts and tests)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	sets := setFlags{}
	fs.Var(sets, "set", "set a config key, such as --set kafka.topic=frames (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println("streamd", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "streamd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *role != "" {
		sets["role"] = *role
	}
	if *listen != "" {
		sets["http.listen"] = *listen
	}
	load := func() (*config.Config, error) {
		return config.Load(config.Sources{File: *configPath, Env: os.Environ(), Overrides: sets})
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamd:", err)
		return 2
	}
	if *check {
		fmt.Println("streamd: configuration OK")
		return 0
	}
	log := app.NewLogger(cfg.Log, os.Stderr).With("version", version)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := app.Run(ctx, cfg, log, version, hup, load, app.WithReadyFile(*readyFile)); err != nil {
		if errors.Is(err, app.ErrConfig) {
			fmt.Fprintln(os.Stderr, "streamd:", err)
			return 2
		}
		log.Error("streamd failed", "err", err)
		return 1
	}
	return 0
}
