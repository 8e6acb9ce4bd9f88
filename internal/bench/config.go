package bench

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Config says what Run measures and where. The zero value of every field
// but Dir means its default (see Defaults), so a CLI can map one flag to
// one field and leave unset flags at zero.
type Config struct {
	// Dir is where everything is measured: Run creates one subdirectory
	// in it and removes it before returning. Required. The figures are
	// those of the disk (and file system) Dir is on.
	Dir string
	// Brokers are external seed brokers (host:port). Empty: an embedded
	// kfake cluster in this process, a fresh one per measurement. With
	// external brokers Run creates fresh topics of its own (the broker
	// must allow CreateTopics) and deletes them at the end.
	Brokers []string
	// Events is the backlog the relay drains. Default 1,000,000.
	Events int
	// ValueSize is the record value (event data) size in bytes. Default 256.
	ValueSize int
	// Partitions of every topic Run produces to. Default 6.
	Partitions int
	// Keys is how many distinct record keys the events spread over.
	// Default 1,000.
	Keys int
	// BatchSize is the events per Publish call while building the backlog.
	// Default 1,000.
	BatchSize int
	// Rate is the end-to-end publish rate in events/s. Default 5,000.
	Rate int
	// E2EDuration is how long the end-to-end measurement publishes.
	// Default 5s.
	E2EDuration time.Duration
	// PublishOps is the number of calls measured per latency series: per
	// concurrency level of Publish, for each bbolt baseline, and for each
	// write+fdatasync mode. Default 2,000.
	PublishOps int
	// PendingOps is the number of single-event Publish calls measured with
	// the backlog pending and without. Capped at Events/2. Default 2,000.
	PendingOps int
	// Concurrency lists the Publish concurrency levels (goroutines calling
	// Publish with one event each). Default 1, 8, 64, 256. The target
	// ratios use levels 1 and 64 and are skipped when those are missing.
	Concurrency []int
	// PhaseTimeout bounds each latency series: a series still running
	// after it stops early and is marked truncated (bbolt's DB.Batch at
	// concurrency 1 takes about 10 ms per call). Two series measured in
	// alternation share twice this. Default 10s.
	PhaseTimeout time.Duration
	// DrainTimeout bounds the backlog drains (the relay's, franz-go's
	// direct produce, and the RSS child). Default 10m.
	DrainTimeout time.Duration
	// RelayBinary is the path of a built relay CLI. When set, a copy of the
	// backlog is drained by `RelayBinary run --once` as a child process to
	// measure its peak RSS; empty skips that measurement with a note.
	RelayBinary string
	// ProfileDir, when set, receives a CPU profile of each throughput
	// phase (drain-relay.pprof, drain-direct.pprof, e2e.pprof,
	// publish.pprof). The directory is created if missing.
	ProfileDir string
	// Log receives progress lines. Default: discard.
	Log io.Writer
}

// Default values of Config.
const (
	DefaultEvents       = 1_000_000
	DefaultValueSize    = 256
	DefaultPartitions   = 6
	DefaultKeys         = 1_000
	DefaultBatchSize    = 1_000
	DefaultRate         = 5_000
	DefaultE2EDuration  = 5 * time.Second
	DefaultPublishOps   = 2_000
	DefaultPendingOps   = 2_000
	DefaultPhaseTimeout = 10 * time.Second
	DefaultDrainTimeout = 10 * time.Minute
)

// DefaultConcurrency is the default of Config.Concurrency.
var DefaultConcurrency = []int{1, 8, 64, 256}

// batchHighConcurrency is the concurrency of the second DB.Batch baseline
// and of the Publish level the targets compare against it.
const batchHighConcurrency = 64

// Defaults returns cfg with every zero field set to its default. It does
// not validate.
func Defaults(cfg Config) Config {
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&cfg.Events, DefaultEvents)
	setInt(&cfg.ValueSize, DefaultValueSize)
	setInt(&cfg.Partitions, DefaultPartitions)
	setInt(&cfg.Keys, DefaultKeys)
	setInt(&cfg.BatchSize, DefaultBatchSize)
	setInt(&cfg.Rate, DefaultRate)
	setDur(&cfg.E2EDuration, DefaultE2EDuration)
	setInt(&cfg.PublishOps, DefaultPublishOps)
	setInt(&cfg.PendingOps, DefaultPendingOps)
	setDur(&cfg.PhaseTimeout, DefaultPhaseTimeout)
	setDur(&cfg.DrainTimeout, DefaultDrainTimeout)
	if len(cfg.Concurrency) == 0 {
		cfg.Concurrency = append([]int(nil), DefaultConcurrency...)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return cfg
}

// Validate reports the first setting that is wrong, naming it. It expects
// Defaults to have been applied.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("bench: Dir is empty: give the directory on the disk to measure")
	case c.Events < 2:
		return fmt.Errorf("bench: Events %d must be at least 2", c.Events)
	case c.ValueSize < 1 || c.ValueSize > 512<<10:
		return fmt.Errorf("bench: ValueSize %d must be 1..524288 bytes", c.ValueSize)
	case c.Partitions < 1 || c.Partitions > 1000:
		return fmt.Errorf("bench: Partitions %d must be 1..1000", c.Partitions)
	case c.Keys < 1:
		return fmt.Errorf("bench: Keys %d must be at least 1", c.Keys)
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return fmt.Errorf("bench: BatchSize %d must be 1..100000", c.BatchSize)
	case c.Rate < 1 || c.Rate > 1_000_000:
		return fmt.Errorf("bench: Rate %d must be 1..1000000 events/s", c.Rate)
	case c.E2EDuration < 0 || c.E2EDuration > time.Hour:
		return fmt.Errorf("bench: E2EDuration %v must be positive and at most 1h", c.E2EDuration)
	case int64(c.Rate)*int64(c.E2EDuration/time.Millisecond)/1000 > 50_000_000:
		return fmt.Errorf("bench: Rate × E2EDuration is %d events, more than 50,000,000", int64(c.Rate)*int64(c.E2EDuration/time.Millisecond)/1000)
	case c.PublishOps < 1:
		return fmt.Errorf("bench: PublishOps %d must be at least 1", c.PublishOps)
	case c.PendingOps < 1:
		return fmt.Errorf("bench: PendingOps %d must be at least 1", c.PendingOps)
	case c.PhaseTimeout < 0:
		return fmt.Errorf("bench: PhaseTimeout %v must be positive", c.PhaseTimeout)
	case c.DrainTimeout < 0:
		return fmt.Errorf("bench: DrainTimeout %v must be positive", c.DrainTimeout)
	}
	for i, n := range c.Concurrency {
		if n < 1 || n > 10_000 {
			return fmt.Errorf("bench: Concurrency level %d must be 1..10000", n)
		}
		if slices.Contains(c.Concurrency[:i], n) {
			return fmt.Errorf("bench: Concurrency level %d is listed twice", n)
		}
	}
	for _, b := range c.Brokers {
		if b == "" {
			return fmt.Errorf("bench: Brokers holds an empty address")
		}
	}
	return nil
}

// pendingOps is PendingOps capped at half the backlog: the last pendingOps
// events of the backlog are the ones measured one by one.
func (c *Config) pendingOps() int { return min(c.PendingOps, c.Events/2) }
