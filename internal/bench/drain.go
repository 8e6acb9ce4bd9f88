package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

// directMaxBuffered bounds the records franz-go buffers in the direct
// produce: the relay's default in-flight window (relay.MaxInFlight), so
// both sides keep the same number of records in the air.
const directMaxBuffered = relay.DefaultMaxInFlight

// backlogResult is what building the backlog produced.
type backlogResult struct {
	events       int // events in the backlog (build + own series)
	buildSeconds float64
	own, none    Series // the last events, one per call, with the rest pending; and paired calls into an empty outbox
	pendingBytes int64
}

// Names of the pending series.
const (
	nameNoneOwn = "publish c1, empty outbox (paired with own)"
	nameOwn     = "publish c1, backlog in own segment"
	nameNone    = "publish c1, empty outbox (paired with sealed)"
	nameSealed  = "publish c1, backlog sealed beside"
)

// buildBacklog publishes c.Events events of topic into a fresh outbox in
// dir with no relay: all but the last pendingOps in calls of BatchSize
// events, then the last ones one per call, timed (Publish latency with the
// backlog pending in the writer's own segment), alternating with calls
// into an empty outbox in noneDir. The writer is closed, so the backlog
// ends up in one sealed segment.
func buildBacklog(ctx context.Context, c *Config, dir, noneDir string, g *gen, topic string) (backlogResult, error) {
	var res backlogResult
	ob, err := outbox.Open(dir)
	if err != nil {
		return res, fmt.Errorf("bench: backlog: %w", err)
	}
	defer ob.Close()
	p := c.pendingOps()
	bulk := c.Events - p
	start := time.Now()
	evs := make([]*events.Event, 0, c.BatchSize)
	for i := 0; i < bulk; i += c.BatchSize {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		evs = evs[:0]
		for j := i; j < min(i+c.BatchSize, bulk); j++ {
			evs = append(evs, g.event(j, topic))
		}
		if err := ob.Publish(ctx, evs...); err != nil {
			return res, fmt.Errorf("bench: backlog: publish: %w", err)
		}
	}
	res.buildSeconds = time.Since(start).Seconds()

	none, err := outbox.Open(noneDir)
	if err != nil {
		return res, fmt.Errorf("bench: backlog: %w", err)
	}
	res.own, res.none, err = runPaired(ctx, nameOwn, nameNoneOwn, p, 2*c.PhaseTimeout,
		func(i int) error { return ob.Publish(ctx, g.event(bulk+i, topic)) },
		func(i int) error { return none.Publish(ctx, g.event(1<<44+i, probeTopic)) })
	if cerr := none.Close(); err == nil {
		err = cerr
	}
	_ = os.RemoveAll(noneDir)
	if err != nil {
		return res, fmt.Errorf("bench: backlog: %w", err)
	}
	res.events = bulk + res.own.Ops
	st, err := ob.Stats()
	if err != nil {
		return res, fmt.Errorf("bench: backlog: %w", err)
	}
	if st.Pending != int64(res.events) {
		return res, fmt.Errorf("%w: backlog holds %d events, published %d", errCount, st.Pending, res.events)
	}
	res.pendingBytes = st.PendingBytes
	if err := ob.Close(); err != nil {
		return res, fmt.Errorf("bench: backlog: close: %w", err)
	}
	return res, nil
}

// measureSealed times single-event Publish calls of a new writer in the
// backlog's directory (the backlog sealed in the segment beside its own),
// alternating with calls into an empty outbox in noneDir. The new writer's
// segment is removed afterwards: its events are not part of the backlog.
func measureSealed(ctx context.Context, c *Config, dir, noneDir string, g *gen) (sealed, none Series, err error) {
	w, err := outbox.Open(dir)
	if err != nil {
		return sealed, none, fmt.Errorf("bench: pending: %w", err)
	}
	seg := w.Own().Path()
	defer os.Remove(seg) // after Close, below
	n, err := outbox.Open(noneDir)
	if err != nil {
		_ = w.Close()
		return sealed, none, fmt.Errorf("bench: pending: %w", err)
	}
	defer os.RemoveAll(noneDir)
	base := 1<<44 + c.pendingOps()
	sealed, none, err = runPaired(ctx, nameSealed, nameNone, c.pendingOps(), 2*c.PhaseTimeout,
		func(i int) error { return w.Publish(ctx, g.event(base+i, probeTopic)) },
		func(i int) error { return n.Publish(ctx, g.event(base+i, probeTopic)) })
	err = errors.Join(err, w.Close(), n.Close())
	if err != nil {
		return sealed, none, fmt.Errorf("bench: pending: %w", err)
	}
	return sealed, none, nil
}

// drainRelay times relay.Once draining dir (opened WithoutWriter, as the
// standalone relay does) to b, from Run's start to its return: claiming and
// checking the segment, reading, producing, acknowledging, deleting the
// drained segment.
func drainRelay(ctx context.Context, c *Config, dir string, b *broker, want int, prof *profiler) (Throughput, error) {
	var t Throughput
	ob, err := outbox.Open(dir, outbox.WithoutWriter())
	if err != nil {
		return t, fmt.Errorf("bench: drain: %w", err)
	}
	defer ob.Close()
	r, err := relay.New(ob, relay.Brokers(b.addrs...), relay.Once())
	if err != nil {
		return t, fmt.Errorf("bench: drain: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, c.DrainTimeout)
	defer cancel()
	stopProf := prof.start("drain-relay")
	start := time.Now()
	runErr := r.Run(dctx)
	wall := time.Since(start)
	stopProf()
	if err := ob.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return t, fmt.Errorf("bench: drain: relay: %w", runErr)
	}
	h := r.Health()
	t = Throughput{Events: int(h.Delivered), Seconds: round3(wall.Seconds()), Errors: h.Parked}
	t.EventsPerSec = round1(float64(t.Events) / wall.Seconds())
	if t.BrokerRecords, err = b.records(ctx); err != nil {
		return t, err
	}
	if t.Events != want || t.BrokerRecords != int64(want) {
		return t, fmt.Errorf("%w: relay delivered %d, broker holds %d, backlog %d", errCount, t.Events, t.BrokerRecords, want)
	}
	return t, nil
}

// produceDirect is the reference: one franz-go client producing the same n
// records itself, asynchronously, with franz-go's defaults for a durable
// producer (idempotent, acks=all, default linger) and its buffer bounded
// like the relay's window, then Flush. Timed from client creation to the
// end of Flush, as the relay's drain is timed from client creation (in
// Run) to its return.
func produceDirect(ctx context.Context, c *Config, b *broker, g *gen, n int, prof *profiler) (Throughput, error) {
	var t Throughput
	dctx, cancel := context.WithTimeout(ctx, c.DrainTimeout)
	defer cancel()
	var errs, acked atomic.Int64
	var (
		errMu    sync.Mutex
		firstErr error
	)
	stopProf := prof.start("drain-direct")
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(directMaxBuffered), kgo.ClientID("boltrelay-bench-direct"))
	if err != nil {
		stopProf()
		return t, fmt.Errorf("bench: direct produce: %w", err)
	}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			if errs.Add(1) == 1 {
				errMu.Lock()
				firstErr = err
				errMu.Unlock()
			}
			return
		}
		acked.Add(1)
	}
	for i := 0; i < n && dctx.Err() == nil; i++ {
		cl.Produce(dctx, relay.ToRecord(g.event(i, b.topic)), promise)
	}
	ferr := cl.Flush(dctx)
	wall := time.Since(start)
	stopProf()
	cl.Close()
	if ferr != nil {
		return t, fmt.Errorf("bench: direct produce: flush: %w", ferr)
	}
	if errs.Load() > 0 {
		errMu.Lock()
		defer errMu.Unlock()
		return t, fmt.Errorf("bench: direct produce: %d errors, first: %w", errs.Load(), firstErr)
	}
	t = Throughput{Events: int(acked.Load()), Seconds: round3(wall.Seconds())}
	t.EventsPerSec = round1(float64(t.Events) / wall.Seconds())
	if t.BrokerRecords, err = b.records(ctx); err != nil {
		return t, err
	}
	if t.Events != n || t.BrokerRecords != int64(n) {
		return t, fmt.Errorf("%w: direct produce acked %d, broker holds %d, sent %d", errCount, t.Events, t.BrokerRecords, n)
	}
	return t, nil
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// copyDir copies the regular files of src (not recursive) into a new dst,
// for a second drain of the same backlog, and syncs them.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	// Written back now, not by the kernel's flusher half a minute later in
	// the middle of another measurement.
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
