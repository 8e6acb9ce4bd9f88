package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/boltrelay/boltrelay/events"
)

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "relay",
		Short: "A durable local outbox for Kafka, and the relay that drains it",
		Long: `relay stores events in a durable local outbox (a directory of bbolt files) and
drains them to Kafka.

  relay publish   store one event; returns once it is on disk, needs no broker
  relay run       drain an outbox to Kafka (until stopped, or --once)
  relay dump      list pending and parked events
  relay stats     summarise an outbox
  relay requeue   move parked events back to pending
  relay demo      the whole path against an embedded in-memory broker
  relay bench     measure the disk, the outbox and the relay side by side

Exit codes: 0 ok, 1 error, 2 usage.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("missing command (publish, run, dump, stats, requeue, demo)")
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cliError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newPublishCmd(e),
		newRunCmd(e),
		newDumpCmd(e),
		newStatsCmd(e),
		newRequeueCmd(e),
		newDemoCmd(e),
		newBenchCmd(e),
	)
	for _, c := range root.Commands() {
		if c.RunE != nil {
			c.RunE = failures(c.RunE)
		}
	}
	return root
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// failures makes every error a command returns carry an exit code: one
// that is not a usage error is a failure (exit 1). Errors without a code
// are then only cobra's own, all of them about the command line.
func failures(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		var ce *cliError
		if err != nil && !errors.As(err, &ce) {
			return &cliError{code: exitError, err: err}
		}
		return err
	}
}

// noArgs refuses positional arguments: every input is a named flag.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (every input is a --flag)", args[0])
	}
	return nil
}

// required checks that a string flag was given a non-empty value.
func required(fs *pflag.FlagSet, name, value string) error {
	if !fs.Changed(name) {
		return usagef("missing required flag --%s", name)
	}
	if value == "" {
		return usagef("--%s is empty", name)
	}
	return nil
}

// addOutboxFlag adds the --outbox flag every command but demo requires.
// addLockTimeoutFlag adds --lock-timeout, the wait for a locked segment of
// the inspection commands.
func addLockTimeoutFlag(fs *pflag.FlagSet, d *time.Duration, then string) {
	fs.DurationVar(d, "lock-timeout", 250*time.Millisecond, "how long to wait for a locked segment before "+then)
}

func checkLockTimeout(d time.Duration) error {
	if d <= 0 {
		return usagef("--lock-timeout %v must be positive", d)
	}
	return nil
}

func addOutboxFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "outbox", "", "outbox directory (required)")
}

// checkOutbox validates --outbox. A missing directory is created by
// publish and run (outbox.Open does that) but is an error for inspection,
// which never creates anything.
func checkOutbox(dir string, mustExist bool) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return failf("--outbox %s is not a directory", dir)
	case err == nil:
		return nil
	case os.IsNotExist(err) && !mustExist:
		return nil
	case os.IsNotExist(err):
		return failf("--outbox %s does not exist", dir)
	}
	return failf("--outbox %s: %v", dir, err)
}

// checkFormat validates --format.
func checkFormat(format string) error {
	switch format {
	case "table", "json":
		return nil
	}
	return usagef("--format %q is not one of table, json", format)
}

// parseLevel validates --log-level.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usagef("--log-level %q is not one of debug, info, warn, error", s)
}

// invalid is a validation error from package events without its
// "invalid event" preamble, for messages that name the flag instead.
func invalid(err error) string {
	return strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": ")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
