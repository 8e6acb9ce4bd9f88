package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

// Run measures, in order: the disk's raw write+fdatasync rate; the naive
// bbolt outboxes (one Update per event, paired with Publish at
// concurrency 1; DB.Batch at concurrency 1 and 64); outbox.Publish at each
// concurrency level; end-to-end latency at cfg.Rate with an embedded
// relay; a backlog of cfg.Events events built without a relay, with
// Publish timed against it; the relay draining it against franz-go
// producing the same records directly; and, with cfg.RelayBinary, the
// relay process's peak RSS draining a copy of the backlog.
//
// Everything is measured on the disk of cfg.Dir, in one subdirectory that
// Run removes before it returns. Every step is bounded (PhaseTimeout per
// latency series, DrainTimeout per drain, fixed waits elsewhere) and ends
// early when ctx does. On error the Result holds what was measured so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c := Defaults(cfg)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.RelayBinary != "" {
		if _, err := exec.LookPath(c.RelayBinary); err != nil {
			return nil, fmt.Errorf("bench: RelayBinary: %w", err)
		}
	}
	if c.ProfileDir != "" {
		if err := os.MkdirAll(c.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: ProfileDir: %w", err)
		}
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench: Dir: %w", err)
	}
	root, err := os.MkdirTemp(c.Dir, "boltrelay-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: Dir: %w", err)
	}
	defer os.RemoveAll(root)

	started := time.Now()
	res := newResult(&c, root, started)
	r := &runner{c: &c, root: root, res: res, start: started,
		runID: strconv.FormatInt(started.UnixNano(), 36),
		g:     newGen(c.Keys, c.ValueSize, uint64(started.UnixNano()))}
	r.prof = &profiler{dir: c.ProfileDir, log: c.Log, notes: &res.Notes}
	err = r.run(ctx)
	if r.relayB != nil {
		r.relayB.close()
	}
	res.computeRatios()
	res.evaluate()
	for _, s := range res.allSeries() {
		if s.Truncated {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: stopped by PhaseTimeout (%v) after %d of %d calls", s.Name, c.PhaseTimeout, s.Ops, s.Asked))
		}
	}
	res.Env.LoadEnd = readLoad()
	res.DurationSeconds = round3(time.Since(started).Seconds())
	r.logf("done in %.1fs", res.DurationSeconds)
	return res, err
}

func newResult(c *Config, root string, started time.Time) *Result {
	host, _ := os.Hostname()
	res := &Result{
		SchemaVersion: SchemaVersion,
		StartedAt:     started.UTC().Truncate(time.Second),
		Env: Env{GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
			NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Hostname: host, Dir: c.Dir, Broker: "kfake",
			LoadStart: readLoad()},
		Config: RunConfig{Events: c.Events, ValueSize: c.ValueSize, Partitions: c.Partitions, Keys: c.Keys,
			BatchSize: c.BatchSize, Rate: c.Rate, E2EDurationSeconds: c.E2EDuration.Seconds(), PublishOps: c.PublishOps,
			PendingOps: c.pendingOps(), Concurrency: c.Concurrency, PhaseTimeoutSecs: c.PhaseTimeout.Seconds(),
			RelayBinary: c.RelayBinary},
		BoltBatch: []Series{},
		Publish:   []Series{},
		Targets:   []Target{},
		Notes:     []string{},
	}
	if len(c.Brokers) > 0 {
		res.Env.Broker, res.Env.Brokers = "external", c.Brokers
	}
	return res
}

// allSeries lists every latency series of r, for notes and the table.
func (r *Result) allSeries() []Series {
	out := []Series{r.Fsync.Append, r.Fsync.Overwrite, r.BoltUpdate}
	out = append(out, r.BoltBatch...)
	out = append(out, r.Publish...)
	return append(out, r.Pending.NoneOwn, r.Pending.Own, r.Pending.None, r.Pending.Sealed)
}

type runner struct {
	c     *Config
	root  string
	res   *Result
	start time.Time
	runID string
	g     *gen
	prof  *profiler

	relayB *broker // the relay's topic, kept for the RSS drain on external brokers
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.c.Log, "bench: [%6.1fs] "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
}

func (r *runner) run(ctx context.Context) error {
	c, res := r.c, r.res
	val := events.Marshal(r.g.event(0, probeTopic))
	res.Config.RecordBytes = len(val)

	r.logf("fsync: %d × (pwrite 4 KiB + fdatasync), appended and overwritten, in %s", c.PublishOps, r.root)
	var err error
	if res.Fsync, err = measureFsync(ctx, r.root, c); err != nil {
		return err
	}
	r.logf("bbolt: one Update per event (%d calls, alternating with Publish c1), then DB.Batch at 1 and %d", c.PublishOps, batchHighConcurrency)
	if res.BoltUpdate, res.Publish, err = measurePublish(ctx, r.root, c, r.g, val); err != nil {
		return err
	}
	for _, conc := range []int{1, batchHighConcurrency} {
		s, err := measureBoltBatch(ctx, r.root, c, val, conc)
		if err != nil {
			return err
		}
		res.BoltBatch = append(res.BoltBatch, s)
	}
	r.logf("publish: %d calls at each of concurrency %v", c.PublishOps, c.Concurrency)
	levels, err := measureLevels(ctx, r.root, c, r.g, r.prof)
	res.Publish = append(res.Publish, levels...)
	sortLevels(c, res.Publish)
	if err != nil {
		return err
	}

	r.logf("e2e: %d events/s for %v with an embedded relay", c.Rate, c.E2EDuration)
	b, err := newBroker(ctx, c, r.runID, "e2e")
	if err != nil {
		return err
	}
	dir := filepath.Join(r.root, "e2e")
	res.E2E, err = measureE2E(ctx, c, dir, b, r.g, r.prof)
	b.close()
	_ = os.RemoveAll(dir)
	if err != nil {
		return err
	}

	if err := r.backlog(ctx); err != nil {
		return err
	}

	return r.rss(ctx)
}

// backlog builds the backlog, measures Publish against it, copies it for
// the RSS child, drains it with the relay and produces the same records
// with franz-go.
func (r *runner) backlog(ctx context.Context) error {
	c, res := r.c, r.res
	dir := filepath.Join(r.root, "backlog")
	r.logf("backlog: publishing %d events of %d bytes in calls of %d, no relay; the last %d one per call", c.Events, c.ValueSize, c.BatchSize, c.pendingOps())
	// The relay's topic: the events carry it, so the RSS copy goes there too.
	relayBroker, err := newBroker(ctx, c, r.runID, "relay")
	if err != nil {
		return err
	}
	r.relayB = relayBroker // closed by run, or below once drained on kfake
	bl, err := buildBacklog(ctx, c, dir, filepath.Join(r.root, "pending-none-own"), r.g, relayBroker.topic)
	if err != nil {
		return err
	}
	res.Drain.Events = bl.events
	res.Drain.BuildSeconds = round3(bl.buildSeconds)
	res.Drain.BuildEventsPerSec = round1(float64(bl.events-bl.own.Ops) / bl.buildSeconds)
	res.Drain.PendingBytes = bl.pendingBytes
	res.Pending.BacklogEvents = bl.events - bl.own.Ops
	res.Pending.Own, res.Pending.NoneOwn = bl.own, bl.none

	r.logf("pending: %d single publishes beside the sealed backlog, alternating with an empty outbox", c.pendingOps())
	if res.Pending.Sealed, res.Pending.None, err = measureSealed(ctx, c, dir, filepath.Join(r.root, "pending-none"), r.g); err != nil {
		return err
	}
	res.Pending.SealedP99Ratio = ratio(res.Pending.Sealed.P99US, res.Pending.None.P99US)
	res.Pending.OwnP99Ratio = ratio(res.Pending.Own.P99US, res.Pending.NoneOwn.P99US)

	res.Drain.DiskBytesBefore = dirBytes(dir)
	if c.RelayBinary != "" {
		r.logf("rss: copying the backlog (%d bytes) for the relay process", res.Drain.DiskBytesBefore)
		if err := copyDir(dir, filepath.Join(r.root, "backlog-rss")); err != nil {
			return fmt.Errorf("bench: copy backlog: %w", err)
		}
	}

	r.logf("drain: relay.Once draining %d events (%d bytes on disk)", bl.events, res.Drain.DiskBytesBefore)
	res.Drain.Relay, err = drainRelay(ctx, c, dir, relayBroker, bl.events, r.prof)
	if err != nil {
		return err
	}
	res.Drain.DiskBytesAfter = dirBytes(dir)
	r.logf("drain: %.0f events/s; %d bytes left on disk", res.Drain.Relay.EventsPerSec, res.Drain.DiskBytesAfter)
	if relayBroker.cluster != nil {
		// Give the embedded broker's memory back before the next one.
		relayBroker.close()
		r.relayB = nil
	}

	r.logf("direct: franz-go producing the same %d records", bl.events)
	db, err := newBroker(ctx, c, r.runID, "direct")
	if err != nil {
		return err
	}
	res.Drain.Direct, err = produceDirect(ctx, c, db, r.g, bl.events, r.prof)
	db.close()
	if err != nil {
		return err
	}
	res.Drain.Ratio = ratio(res.Drain.Relay.EventsPerSec, res.Drain.Direct.EventsPerSec)
	r.logf("direct: %.0f events/s; relay/direct %.3f", res.Drain.Direct.EventsPerSec, res.Drain.Ratio)
	return nil
}

// rss drains the copy of the backlog with the relay binary as a child.
func (r *runner) rss(ctx context.Context) error {
	c, res := r.c, r.res
	if c.RelayBinary == "" {
		res.RSS = RSS{Skipped: true, Reason: "no relay binary given (Config.RelayBinary)"}
		res.Notes = append(res.Notes, "relay RSS not measured: no relay binary given")
		return nil
	}
	dir := filepath.Join(r.root, "backlog-rss")
	r.logf("rss: %s run --once draining %d events", c.RelayBinary, res.Drain.Events)
	// The copied events carry the relay topic's name: on external brokers
	// that topic (still open) receives them a second time; on kfake a
	// fresh cluster has a topic of the same name.
	b := r.relayB
	if b == nil {
		var err error
		if b, err = newBroker(ctx, c, r.runID, "rss"); err != nil {
			return err
		}
		defer b.close()
	}
	var err error
	res.RSS, err = measureRSS(ctx, c, dir, b, res.Drain.Events)
	_ = os.RemoveAll(dir)
	if err != nil {
		return err
	}
	r.logf("rss: peak %d bytes (anon %d, file %d)", res.RSS.PeakRSSBytes, res.RSS.PeakAnonBytes, res.RSS.PeakFileBytes)
	return nil
}
