package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

type runOpts struct {
	outbox       string
	brokers      []string
	once         bool
	drainTimeout time.Duration
	logLevel     string
	scanInterval time.Duration
	maxInFlight  int
	timeout      time.Duration
	memoryLimit  string
}

func newRunCmd(e *env) *cobra.Command {
	var o runOpts
	cmd := &cobra.Command{
		Use:   "run --outbox DIR --brokers HOST:PORT[,...] [flags]",
		Short: "Drain an outbox to Kafka until stopped (or, with --once, until drained)",
		Long: `Drain the outbox to Kafka: deliver every pending event and delete it once the
broker acknowledged it.

The brokers are --brokers, else $KAFKA_BROKERS, else $KAFKA_BOOTSTRAP_SERVERS
(comma-separated HOST:PORT). run has no segment of its own: it drains the
segments that writers closed (or left behind when they died), looking for new
ones every --scan-interval.

It runs until SIGINT or SIGTERM, then stops reading, waits up to
--drain-timeout for records already sent, and exits 0; what was not
acknowledged stays pending for the next run (a second signal exits at once,
losing nothing). With --once it exits 0 as soon as nothing drainable is
pending, and 1 if events wait for a topic that is missing or not authorised,
or a segment is damaged. Logs go to stderr.`,
		Example: `  relay run --outbox /var/lib/relay --brokers kafka1:9092,kafka2:9092
  KAFKA_BOOTSTRAP_SERVERS=localhost:9092 relay run --outbox /var/lib/relay --once`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRun(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addOutboxFlag(fs, &o.outbox)
	fs.StringArrayVar(&o.brokers, "brokers", nil, "seed brokers, comma-separated `HOST:PORT[,...]` (default $KAFKA_BROKERS, then $KAFKA_BOOTSTRAP_SERVERS)")
	fs.BoolVar(&o.once, "once", false, "exit once nothing drainable is pending")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", relay.DefaultDrainTimeout, "on stop, how long to wait for records already sent")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.scanInterval, "scan-interval", relay.DefaultScanInterval, "how often to look for segments closed by writers")
	fs.IntVar(&o.maxInFlight, "max-in-flight", relay.DefaultMaxInFlight, "records sent and not yet acknowledged, at most (bounds re-sends after a crash)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop after this long, as on SIGTERM; with --once, reaching it is an error (0: no limit)")
	fs.StringVar(&o.memoryLimit, "memory-limit", "32MiB", "soft Go heap limit (GOMEMLIMIT syntax; off: none); $GOMEMLIMIT wins")
	return cmd
}

// applyMemoryLimit sets the Go runtime's soft memory limit, unless the
// environment already did. A relay streams, so its live heap is small (the
// in-flight window and franz-go's buffers); without a limit the garbage
// collector lets the heap grow to twice that between cycles, which is what
// a long-running relay's resident set would show.
func applyMemoryLimit(v string, getenv func(string) string) error {
	if getenv("GOMEMLIMIT") != "" || v == "off" {
		return nil
	}
	n, err := parseBytes(v)
	if err != nil {
		return usagef("--memory-limit %q: %v", v, err)
	}
	debug.SetMemoryLimit(n)
	return nil
}

// parseBytes reads a size like 32MiB, 64MB, 1GiB or 1048576.
func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size such as 32MiB")
	}
	return n * mult, nil
}

func runRun(cmd *cobra.Command, e *env, o *runOpts) error {
	fs := cmd.Flags()
	if err := required(fs, "outbox", o.outbox); err != nil {
		return err
	}
	brokers, err := resolveBrokers(fs, o.brokers, e.getenv)
	if err != nil {
		return err
	}
	if err := applyMemoryLimit(o.memoryLimit, e.getenv); err != nil {
		return err
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return err
	}
	switch {
	case o.drainTimeout <= 0:
		return usagef("--drain-timeout %v must be positive", o.drainTimeout)
	case o.scanInterval <= 0:
		return usagef("--scan-interval %v must be positive", o.scanInterval)
	case o.maxInFlight < 1:
		return usagef("--max-in-flight %d must be at least 1", o.maxInFlight)
	case o.timeout < 0:
		return usagef("--timeout %v must not be negative", o.timeout)
	}
	if err := checkOutbox(o.outbox, false); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	ob, err := outbox.Open(o.outbox, outbox.WithoutWriter(), outbox.Logger(log))
	if err != nil {
		return failf("open outbox: %w", err)
	}
	opts := []relay.Option{
		relay.Brokers(brokers...),
		relay.Logger(log),
		relay.DrainTimeout(o.drainTimeout),
		relay.ScanInterval(o.scanInterval),
		relay.MaxInFlight(o.maxInFlight),
	}
	if o.once {
		opts = append(opts, relay.Once())
	}
	r, err := relay.New(ob, opts...)
	if err != nil {
		_ = ob.Close()
		return failf("%w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, give the signals back: a second one ends the
	// process at once, which loses nothing (unacknowledged events stay
	// pending and are sent again).
	var returned atomic.Bool
	context.AfterFunc(ctx, func() {
		stop()
		if !returned.Load() { // a signal, not the deferred stop at the end
			log.Info("relay: stopping; waiting for records in flight (a second signal exits now, losing nothing)", "drain_timeout", o.drainTimeout)
		}
	})
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if o.timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.timeout)
	}
	defer cancel()

	log.Info("relay: started", "outbox", o.outbox, "brokers", strings.Join(brokers, ","), "once", o.once)
	runErr := r.Run(runCtx)
	returned.Store(true)
	interrupted, timedOut := ctx.Err() != nil, runCtx.Err() != nil
	closeErr := ob.Close() // the relay has returned: its owner closes the outbox last
	h := r.Health()
	log.Info("relay: stopped", "delivered", h.Delivered, "parked", h.Parked)

	if errors.Is(runErr, relay.ErrDrainTimeout) && !errors.Is(runErr, relay.ErrStillPending) {
		log.Warn("relay: stopped with records unacknowledged; they stay pending and are sent again by the next run", "error", runErr)
		runErr = nil
	}
	if closeErr != nil && runErr == nil {
		runErr = failf("close outbox %s: %w", o.outbox, closeErr)
	}
	if !o.once {
		return runErr
	}

	// The relay logs damaged segments as it finds them; name them once more
	// at the end, where a --once caller looks, and fail: they hold events
	// that nothing will deliver until someone looks at them.
	damaged := reportSkipped(e.stderr, o.outbox, r.Skipped(), "not drained")
	left := ""
	if interrupted || timedOut {
		if st, err := outbox.ReadStats(o.outbox, outbox.LockTimeout(10*time.Millisecond)); err == nil {
			left = fmt.Sprintf(" (%s still pending)", plural(st.Pending, "event", "events"))
		}
	}
	switch {
	case runErr != nil:
		return runErr
	case interrupted:
		return failf("stopped by a signal before the outbox was drained%s", left)
	case timedOut:
		return failf("--timeout %v reached before the outbox was drained%s", o.timeout, left)
	case damaged > 0:
		return errSilent
	}
	return nil
}

// resolveBrokers returns the seed brokers from --brokers, $KAFKA_BROKERS or
// $KAFKA_BOOTSTRAP_SERVERS, in that order. Without any it is a usage error:
// run never falls back to a broker of its own.
func resolveBrokers(fs *pflag.FlagSet, flagVals []string, getenv func(string) string) ([]string, error) {
	var raw []string
	source := "--brokers"
	switch {
	case fs.Changed("brokers"):
		raw = flagVals
	case strings.TrimSpace(getenv("KAFKA_BROKERS")) != "":
		source, raw = "$KAFKA_BROKERS", []string{getenv("KAFKA_BROKERS")}
	case strings.TrimSpace(getenv("KAFKA_BOOTSTRAP_SERVERS")) != "":
		source, raw = "$KAFKA_BOOTSTRAP_SERVERS", []string{getenv("KAFKA_BOOTSTRAP_SERVERS")}
	default:
		return nil, usagef("no brokers: give --brokers HOST:PORT[,...] or set KAFKA_BROKERS or KAFKA_BOOTSTRAP_SERVERS")
	}
	return parseBrokers(source, raw)
}

// parseBrokers splits comma-separated HOST:PORT lists and checks each;
// source names the flag or variable they came from.
func parseBrokers(source string, raw []string) ([]string, error) {
	var out []string
	for _, r := range raw {
		for _, b := range strings.Split(r, ",") {
			b = strings.TrimSpace(b)
			if b == "" {
				continue
			}
			host, port, err := net.SplitHostPort(b)
			n, perr := strconv.Atoi(port)
			if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				return nil, usagef("%s: %q is not HOST:PORT", source, b)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, usagef("%s is empty", source)
	}
	return out, nil
}
