package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/internal/bench"
)

type benchOpts struct {
	dir         string
	brokers     []string
	events      int
	valueSize   int
	concurrency []int
	publishOps  int
	rate        int
	e2e         time.Duration
	jsonOut     bool
	noRSS       bool
	profileDir  string
}

func newBenchCmd(e *env) *cobra.Command {
	var o benchOpts
	cmd := &cobra.Command{
		Use:   "bench --dir DIR [flags]",
		Short: "Measure the disk, the outbox and the relay on this machine, side by side",
		Long: `Measure, in one run and on the disk of --dir: the raw fdatasync rate; a naive
outbox (one bbolt Update per event, and bbolt's DB.Batch); boltrelay Publish
at several concurrencies; the relay draining a backlog to the broker against
franz-go producing the same records directly; publish latency with the
backlog pending; end-to-end latency (publish to broker acknowledgement) at a
fixed rate with an embedded relay; and the relay process's peak RSS while
draining. Absolute times on a shared machine are noisy: the ratios, measured
in the same run against baselines on the same disk and broker, are what
count. The broker is an embedded in-memory kfake unless --brokers is given
(then fresh topics are created and deleted there).

It prints a table, or with --json one JSON object (fields in
docs/benchmarks.md). It needs about twice the backlog's size free in --dir
(about 2 GiB by default) and takes a minute or two.`,
		Example: `  relay bench --dir /var/tmp/bench
  relay bench --dir /var/tmp/bench --events 200000 --json > bench.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&o.dir, "dir", "", "directory on the disk to measure (required; a subdirectory is created and removed)")
	fs.StringArrayVar(&o.brokers, "brokers", nil, "external seed brokers HOST:PORT[,...] (default: an embedded in-memory broker)")
	fs.IntVar(&o.events, "events", bench.DefaultEvents, "backlog the relay drains")
	fs.IntVar(&o.valueSize, "value-size", bench.DefaultValueSize, "event value size in bytes")
	fs.IntSliceVar(&o.concurrency, "concurrency", bench.DefaultConcurrency, "Publish concurrency levels")
	fs.IntVar(&o.publishOps, "publish-ops", bench.DefaultPublishOps, "calls per latency series")
	fs.IntVar(&o.rate, "rate", bench.DefaultRate, "end-to-end publish rate, events/s")
	fs.DurationVar(&o.e2e, "e2e-duration", bench.DefaultE2EDuration, "how long the end-to-end measurement publishes")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&o.noRSS, "no-rss", false, "skip the relay-process RSS measurement")
	fs.StringVar(&o.profileDir, "profile-dir", "", "write a CPU profile of each throughput phase here")
	return cmd
}

func runBench(cmd *cobra.Command, e *env, o *benchOpts) error {
	if err := required(cmd.Flags(), "dir", o.dir); err != nil {
		return err
	}
	if fi, err := os.Stat(o.dir); err != nil || !fi.IsDir() {
		return failf("--dir %s is not a directory", o.dir)
	}
	if cmd.Flags().Changed("brokers") {
		var err error
		if o.brokers, err = parseBrokers("--brokers", o.brokers); err != nil {
			return err
		}
	}
	cfg := bench.Config{
		Dir: o.dir, Brokers: o.brokers, Events: o.events, ValueSize: o.valueSize,
		Concurrency: o.concurrency, PublishOps: o.publishOps, Rate: o.rate,
		E2EDuration: o.e2e, ProfileDir: o.profileDir, Log: e.stderr,
	}
	if !o.noRSS {
		if exe, err := os.Executable(); err == nil {
			cfg.RelayBinary = exe
		}
	}
	cfg = bench.Defaults(cfg)
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return failf("bench: %w", err)
	}
	if o.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteTable(e.stdout)
}
