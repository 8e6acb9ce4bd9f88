package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

// e2eWorkers bounds the concurrent Publish calls of the end-to-end pacer.
// One synchronous publisher cannot reach thousands of events/s (each call
// waits for an fsync); many concurrent ones, as many hook processes or
// request goroutines would be, share commits.
const e2eWorkers = 128

// e2eWarmup events are published and acknowledged before the measurement,
// so the client's connection and metadata are not counted.
const e2eWarmup = 20

type e2eStart struct {
	start, sched time.Time
	warm         bool
}

// ackHook observes the broker's acknowledgement of each record: franz-go
// calls it just before the record's promise, with the produce's outcome.
type ackHook struct {
	starts sync.Map // ce_id -> e2eStart

	mu    sync.Mutex
	lats  []time.Duration // publish start -> ack
	sched []time.Duration // scheduled -> ack

	acked, warmAcked, errs atomic.Int64
}

var _ kgo.HookProduceRecordUnbuffered = (*ackHook)(nil)

func (h *ackHook) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	now := time.Now()
	id, ok := relay.HeaderValue(r, relay.HeaderID)
	if !ok {
		return
	}
	if err != nil {
		h.errs.Add(1) // the relay sends it again; the start time stays
		return
	}
	v, ok := h.starts.LoadAndDelete(id)
	if !ok {
		return // a duplicate acknowledgement: already counted
	}
	s := v.(e2eStart)
	if s.warm {
		h.warmAcked.Add(1)
		return
	}
	h.mu.Lock()
	h.lats = append(h.lats, now.Sub(s.start))
	h.sched = append(h.sched, now.Sub(s.sched))
	h.mu.Unlock()
	h.acked.Add(1)
}

// measureE2E publishes at c.Rate for c.E2EDuration into an outbox with an
// embedded relay (relay.New on the same outbox, Run in a goroutine, woken
// by Publish) and times each event from just before its Publish call to
// the broker's acknowledgement.
func measureE2E(ctx context.Context, c *Config, dir string, b *broker, g *gen, prof *profiler) (E2E, error) {
	res := E2E{TargetRate: c.Rate, Workers: e2eWorkers}
	ob, err := outbox.Open(dir)
	if err != nil {
		return res, fmt.Errorf("bench: e2e: %w", err)
	}
	h := &ackHook{}
	r, err := relay.New(ob, relay.Brokers(b.addrs...), relay.KafkaOpts(kgo.WithHooks(h)))
	if err != nil {
		_ = ob.Close()
		return res, fmt.Errorf("bench: e2e: %w", err)
	}
	rctx, stopRelay := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() { defer wg.Done(); runErr = r.Run(rctx) }()
	finish := func() error {
		stopRelay()
		wg.Wait()
		return errors.Join(runErr, ob.Close())
	}

	// Warm up: connect and load metadata before anything is timed.
	for i := 0; i < e2eWarmup; i++ {
		e := g.event(1<<40+i, b.topic)
		h.starts.Store(e.ID, e2eStart{warm: true})
		if err := ob.Publish(ctx, e); err != nil {
			return res, errors.Join(fmt.Errorf("bench: e2e: warm-up: %w", err), finish())
		}
	}
	if !waitFor(ctx, 30*time.Second, func() bool { return h.warmAcked.Load() >= e2eWarmup }) {
		return res, errors.Join(fmt.Errorf("bench: e2e: warm-up events not acknowledged within 30s (%d of %d)", h.warmAcked.Load(), e2eWarmup), finish())
	}

	total := int(int64(c.Rate) * int64(c.E2EDuration) / int64(time.Second))
	total = max(total, 1)
	type job struct {
		i     int
		sched time.Time
	}
	jobs := make(chan job, e2eWorkers)
	var (
		published, pubErrs atomic.Int64
		pmu                sync.Mutex
		pubLats            = make([]time.Duration, 0, total)
		workers            sync.WaitGroup
	)
	for w := 0; w < e2eWorkers; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				e := g.event(j.i, b.topic)
				t0 := time.Now()
				h.starts.Store(e.ID, e2eStart{start: t0, sched: j.sched})
				err := ob.Publish(ctx, e)
				d := time.Since(t0)
				if err != nil {
					h.starts.Delete(e.ID)
					pubErrs.Add(1)
					continue
				}
				published.Add(1)
				pmu.Lock()
				pubLats = append(pubLats, d)
				pmu.Unlock()
			}
		}()
	}
	stopProf := prof.start("e2e")
	// Token pacing: every millisecond, hand out every event due by then
	// (event i is due at start + i/Rate). If all workers are busy the
	// pacer falls behind, which ScheduleP99US shows.
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	next := 0
	perNS := float64(c.Rate) / float64(time.Second)
pace:
	for next < total {
		select {
		case <-ctx.Done():
			break pace
		case now := <-tick.C:
			due := min(total, int(float64(now.Sub(start))*perNS)+1)
			for ; next < due; next++ {
				j := job{i: next, sched: start.Add(time.Duration(float64(next) / perNS))}
				select {
				case jobs <- j:
				case <-ctx.Done():
					break pace
				}
			}
		}
	}
	tick.Stop()
	close(jobs)
	workers.Wait()
	pubWall := time.Since(start)
	n := published.Load()
	// Every published event is acknowledged unless something is wrong;
	// the wait is bounded either way.
	waitFor(ctx, 30*time.Second, func() bool { return h.acked.Load() >= n })
	stopProf()
	if err := finish(); err != nil {
		return res, fmt.Errorf("bench: e2e: relay: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	h.mu.Lock()
	lats, sched := h.lats, h.sched
	h.mu.Unlock()
	res.Published = int(n)
	res.Acked = len(lats)
	res.Errors = h.errs.Load() + pubErrs.Load()
	res.Seconds = round3(pubWall.Seconds())
	res.AchievedRate = round1(float64(n) / pubWall.Seconds())
	s := summarize("", lats, pubWall)
	res.P50US, res.P90US, res.P99US, res.MaxUS = s.P50US, s.P90US, s.P99US, s.MaxUS
	slices.Sort(sched)
	res.ScheduleP99US = us(quantile(sched, 0.99))
	ps := summarize("", pubLats, pubWall)
	res.PublishP50US, res.PublishP99US = ps.P50US, ps.P99US
	if res.Acked != res.Published {
		return res, fmt.Errorf("%w: e2e: %d published, %d acknowledged within 30s", errCount, res.Published, res.Acked)
	}
	return res, nil
}

// waitFor polls cond every 5 ms until it holds (true) or d passed or ctx
// ended (false).
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
