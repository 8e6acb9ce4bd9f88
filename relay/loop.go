package relay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/outbox"
)

// segState is the loop's view of one claimed segment.
type segState struct {
	seg      *outbox.Segment
	cursor   uint64 // highest sequence read so far
	inflight int
}

type flightKey struct {
	ss  *segState // one per claimed segment: hashing a pointer, not its name
	seq uint64
}

// flight is one record handed to the Kafka client.
type flight struct {
	ss       *segState
	seq      uint64
	size     int // Kafka size: key + value + headers
	stored   int // stored size, for the in-flight byte bound
	attempts int // failed attempts recorded before this one
	isolated bool
	ts       *topicState // the topic's state, looked up once per record
}

type result struct {
	f   *flight
	err error
}

type ackResult struct {
	batch map[*segState][]*flight
	errs  map[*segState]error
}

// topicState holds what the loop knows of a topic that misbehaves.
type topicState struct {
	name      string
	bo        backoff.BackOff
	waitUntil time.Time // events of this topic are not sent before then
	skipped   bool      // events were skipped while waiting: rescan when due
	lastErr   string
	inflight  int
	// Isolation after MESSAGE_TOO_LARGE: the failed records are re-sent
	// one at a time, with nothing else of the topic in flight, to find the
	// one the broker can never take.
	isolating bool
	queue     []isoItem
	isoBusy   bool
}

type isoItem struct {
	ss  *segState
	seq uint64
}

// loop is one life of the relay's drain loop. One goroutine (Run's) owns
// all of its fields except those under resMu, which the client's produce
// promises write.
type loop struct {
	r   *Relay
	cfg *cfg
	cl  *kgo.Client

	window      int
	windowBytes int

	segs     []*segState
	byName   map[string]*segState
	others   []outbox.SegmentInfo
	damaged  map[string]bool
	inflight map[flightKey]*flight
	nBytes   int
	topics   map[string]*topicState

	resMu     sync.Mutex
	results   []result
	resSignal chan struct{}
	promises  atomic.Int64 // promises not yet called

	gbo         backoff.BackOff
	globalUntil time.Time
	rescan      bool
	nextScan    time.Time
	logs        logPacer

	pctx    context.Context // context of every produced record
	pcancel context.CancelFunc

	// Acknowledgements are committed by the acker goroutine, so that the
	// loop keeps reading and producing while a commit waits on fsync. A
	// record stays in inflight until its acknowledgement is committed, so
	// no rescan can send it again meanwhile. One batch at a time.
	ackQueue   map[*segState][]*flight
	acking     int // flights acknowledged by Kafka, commit not yet booked
	ackBusy    bool
	ackIn      chan map[*segState][]*flight
	ackOut     chan ackResult
	ackerDone  chan struct{}
	ackerAlive bool

	shutting     bool
	stillPending map[string]string // once: topics left waiting, with their error
	readAll      bool              // the last fill read every segment to its end
	flushDone    chan struct{}
}

func newLoop(r *Relay, cl *kgo.Client) *loop {
	l := &loop{
		r: r, cfg: &r.cfg, cl: cl,
		byName:       map[string]*segState{},
		damaged:      map[string]bool{},
		inflight:     map[flightKey]*flight{},
		topics:       map[string]*topicState{},
		resSignal:    make(chan struct{}, 1),
		gbo:          r.newBackoff(),
		stillPending: map[string]string{},
	}
	l.pctx, l.pcancel = context.WithCancel(context.Background())
	l.ackQueue = map[*segState][]*flight{}
	l.ackIn = make(chan map[*segState][]*flight)
	l.ackOut = make(chan ackResult, 1)
	l.ackerDone = make(chan struct{})
	// The window never exceeds what the client buffers, so Produce never
	// blocks the loop (which must stay free to take acknowledgements).
	l.window = r.cfg.maxInFlight
	if v, ok := cl.OptValue(kgo.MaxBufferedRecords).(int64); ok && v > 0 && v < int64(l.window) {
		l.window = int(v)
	}
	l.windowBytes = math.MaxInt
	if v, ok := cl.OptValue(kgo.MaxBufferedBytes).(int64); ok && v > 0 {
		l.windowBytes = int(v)
	}
	return l
}

func (l *loop) hook(stage string) {
	if l.cfg.testHook != nil {
		l.cfg.testHook(stage)
	}
}

func (l *loop) run(ctx context.Context) error {
	l.ackerAlive = true
	go l.acker()
	l.scan(time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return l.shutdown()
		}
		l.hook("loop")
		if err := l.process(time.Now()); err != nil {
			return errors.Join(err, l.shutdown())
		}
		now := time.Now()
		if !now.Before(l.nextScan) {
			l.scan(now)
		}
		l.fill(now)
		if l.cfg.once && l.idle() {
			l.scan(now)
			l.fill(now)
			if l.idle() {
				return l.finishOnce()
			}
		}
		timer.Reset(l.nextWake(time.Now()))
		select {
		case <-ctx.Done():
		case <-l.resSignal:
		case <-l.r.ob.Wake():
		case <-timer.C:
		}
	}
}

// nextWake is how long the loop may sleep: until the next scan, the end of
// a backoff, or a waiting topic falling due.
func (l *loop) nextWake(now time.Time) time.Duration {
	if l.rescan && !now.Before(l.globalUntil) {
		return time.Millisecond // an isolation ended or an ack failed: read again now
	}
	next := l.nextScan
	if l.globalUntil.After(now) && l.globalUntil.Before(next) {
		next = l.globalUntil
	}
	for _, ts := range l.topics {
		if ts.skipped && ts.waitUntil.After(now) && ts.waitUntil.Before(next) {
			next = ts.waitUntil
		}
	}
	d := next.Sub(now)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// scan claims sealed segments and refreshes the segment list, keeping the
// cursors of segments already known.
func (l *loop) scan(now time.Time) {
	l.nextScan = now.Add(l.cfg.scanInterval)
	segs, others, err := l.r.ob.Claim()
	if err != nil {
		l.logEvery("scan", "relay: scan outbox", "dir", l.r.ob.Dir(), "error", err)
		return
	}
	next := make([]*segState, 0, len(segs))
	byName := make(map[string]*segState, len(segs))
	for _, s := range segs {
		ss := l.byName[s.Name()]
		if ss == nil || ss.seg != s {
			ss = &segState{seg: s}
		}
		next = append(next, ss)
		byName[s.Name()] = ss
	}
	// A segment with records in flight stays known even if Claim no
	// longer lists it, so their acknowledgements find it.
	for name, ss := range l.byName {
		if byName[name] == nil && ss.inflight > 0 {
			next = append(next, ss)
			byName[name] = ss
		}
	}
	sort.Slice(next, func(i, j int) bool { return next[i].seg.Name() < next[j].seg.Name() })
	l.segs, l.byName, l.others = next, byName, others
	for _, o := range others {
		if o.State == outbox.StateDamaged && !l.damaged[o.Name] {
			l.damaged[o.Name] = true
			l.cfg.logger.Error("relay: damaged segment skipped; the others still drain", "segment", o.Name, "error", o.Err)
		}
	}
}

func (l *loop) topic(name string) *topicState {
	ts := l.topics[name]
	if ts == nil {
		ts = &topicState{name: name, bo: l.r.newBackoff()}
		l.topics[name] = ts
	}
	return ts
}

// fill reads pending records and hands them to the client until the window
// is full or every segment is read to its end.
func (l *loop) fill(now time.Time) {
	l.readAll = false
	if l.shutting || now.Before(l.globalUntil) {
		return
	}
	l.startIsolation()
	for _, ts := range l.topics {
		if ts.skipped && !now.Before(ts.waitUntil) && !ts.isolating {
			ts.skipped = false
			l.rescan = true
		}
	}
	if l.rescan {
		l.rescan = false
		for _, ss := range l.segs {
			ss.cursor = 0
		}
	}
	readAll := true
	for _, ss := range l.segs {
		for {
			room := l.window - len(l.inflight)
			if room <= 0 || l.nBytes >= l.windowBytes {
				readAll = false
				break
			}
			n := min(room, l.cfg.batchRecords)
			recs, err := ss.seg.Read(ss.cursor, n, l.cfg.batchBytes)
			if err != nil {
				l.logEvery("read:"+ss.seg.Name(), "relay: read segment", "segment", ss.seg.Path(), "error", err)
				break
			}
			for i := range recs {
				l.consider(ss, &recs[i], now)
			}
			// Only an empty read means the end: a read cut short by
			// BatchBytes returns fewer than asked with more behind it.
			if len(recs) == 0 {
				break
			}
		}
	}
	l.readAll = readAll
	l.r.setHealth(func(h *Health) { h.InFlight = len(l.inflight) })
	l.hook("filled")
}

func (l *loop) consider(ss *segState, rec *outbox.Record, now time.Time) {
	ss.cursor = rec.Seq
	if l.inflight[flightKey{ss, rec.Seq}] != nil {
		return
	}
	if rec.Corrupt != nil {
		reason := fmt.Sprintf("corrupt record in outbox: %v", rec.Corrupt)
		l.park(ss, rec.Seq, rec.Attempts, reason, "")
		return
	}
	ts := l.topic(rec.Event.Topic)
	if ts.isolating || now.Before(ts.waitUntil) {
		ts.skipped = true
		return
	}
	l.produce(ss, rec, false)
}

func (l *loop) produce(ss *segState, rec *outbox.Record, isolated bool) {
	kr := ToRecord(&rec.Event)
	f := &flight{ss: ss, seq: rec.Seq, ts: l.topic(rec.Event.Topic), size: kafkaSize(kr), stored: rec.Size, attempts: rec.Attempts, isolated: isolated}
	l.inflight[flightKey{ss, rec.Seq}] = f
	ss.inflight++
	f.ts.inflight++
	l.nBytes += f.stored
	l.promises.Add(1)
	l.cl.Produce(l.pctx, kr, func(_ *kgo.Record, err error) {
		// Promises run serially on the client's goroutine and must not
		// block: append and signal, the loop does the rest.
		l.resMu.Lock()
		l.results = append(l.results, result{f: f, err: err})
		l.resMu.Unlock()
		l.promises.Add(-1)
		select {
		case l.resSignal <- struct{}{}:
		default:
		}
	})
}

// process takes the results the promises delivered, commits the
// acknowledgements (one commit per segment), parks and records failures,
// and releases drained sealed segments. It returns an error only when the
// outbox can no longer be written (it was closed under the relay).
func (l *loop) process(now time.Time) error {
	l.resMu.Lock()
	res := l.results
	l.results = nil
	l.resMu.Unlock()
	var errs []error
	select {
	case a := <-l.ackOut:
		errs = append(errs, l.acked(a)...)
	default:
	}
	if len(res) == 0 {
		l.dispatchAcks()
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return l.release()
	}
	fails := map[*segState][]outbox.Failure{}
	for _, x := range res {
		f := x.f
		ts := f.ts
		if f.isolated {
			ts.isoBusy = false
		}
		if x.err == nil {
			// Still in flight until the acknowledgement is committed.
			l.ackQueue[f.ss] = append(l.ackQueue[f.ss], f)
			l.acking++
			if !ts.waitUntil.IsZero() || ts.lastErr != "" {
				ts.waitUntil, ts.lastErr = time.Time{}, ""
				ts.bo.Reset()
				l.r.setHealth(func(h *Health) { delete(h.Waiting, f.ts.name) })
			}
			continue
		}
		l.forget(f)
		reason := x.err.Error()
		switch Classify(x.err) {
		case Transient:
			if f.isolated {
				ts.queue = append([]isoItem{{f.ss, f.seq}}, ts.queue...)
			}
			if !l.shutting && !now.Before(l.globalUntil) {
				d := l.gbo.NextBackOff()
				l.globalUntil = now.Add(d)
				l.logEvery("transient", "relay: produce failed; retrying after backoff", "topic", f.ts.name, "error", reason, "backoff", d)
			}
			l.rescan = true
			l.r.setHealth(func(h *Health) { h.LastError, h.ErrorAt = reason, now })
		case Waiting:
			fails[f.ss] = append(fails[f.ss], outbox.Failure{Seq: f.seq, Topic: f.ts.name, Reason: reason})
			l.wait(ts, reason, now)
		case TooLarge, Permanent:
			// Kafka rejects a whole batch for one bad record (too large,
			// an invalid timestamp, a missing key on a compacted topic),
			// failing its neighbours with the same error. Only a record
			// that fails alone is parked; the others are re-sent one at
			// a time, in order, before anything later of the topic.
			if f.isolated {
				l.park(f.ss, f.seq, f.attempts+1, fmt.Sprintf("%s (record %d bytes, sent alone)", reason, f.size), f.ts.name)
				break
			}
			if !ts.isolating {
				l.cfg.logger.Warn("relay: broker rejected a batch; re-sending its records one at a time to park only the culprit", "topic", f.ts.name, "error", reason)
			}
			ts.isolating = true
			ts.queue = append(ts.queue, isoItem{f.ss, f.seq})
		}
	}
	l.dispatchAcks()
	for ss, fs := range fails {
		if err := ss.seg.FailMany(fs); err != nil && errors.Is(err, outbox.ErrClosed) {
			errs = append(errs, fmt.Errorf("relay: record failures: %w", err))
		}
	}
	l.r.setHealth(func(h *Health) { h.InFlight = len(l.inflight) })
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return l.release()
}

// forget drops a finished flight from the loop's books.
func (l *loop) forget(f *flight) {
	delete(l.inflight, flightKey{f.ss, f.seq})
	f.ss.inflight--
	l.nBytes -= f.stored
	f.ts.inflight--
}

// dispatchAcks hands the queued acknowledgements to the acker unless it is
// still committing the previous batch (the next batch then grows, and
// commits more per fsync).
func (l *loop) dispatchAcks() {
	if l.ackBusy || len(l.ackQueue) == 0 || !l.ackerAlive {
		return
	}
	batch := l.ackQueue
	l.ackQueue = map[*segState][]*flight{}
	l.ackBusy = true
	l.ackIn <- batch
}

// acked books a committed batch of acknowledgements. It returns an error
// only for an outbox closed under the relay.
func (l *loop) acked(a ackResult) []error {
	l.ackBusy = false
	var errs []error
	delivered := int64(0)
	for ss, fs := range a.batch {
		for _, f := range fs {
			l.forget(f)
		}
		l.acking -= len(fs)
		err := a.errs[ss]
		switch {
		case err == nil:
			delivered += int64(len(fs))
		case errors.Is(err, outbox.ErrClosed):
			errs = append(errs, fmt.Errorf("relay: record acknowledgements: %w", err))
		default:
			// Not recorded: those records stay pending and go again.
			l.logEvery("ack", "relay: record acknowledgements", "segment", ss.seg.Path(), "error", err)
			l.rescan = true
		}
	}
	if delivered > 0 {
		l.gbo.Reset()
		l.r.setHealth(func(h *Health) { h.Delivered += delivered; h.Healthy = true })
	}
	return errs
}

// acker commits acknowledgement batches, one commit per segment (shared,
// through the outbox's group commit, with concurrent publishes).
func (l *loop) acker() {
	defer close(l.ackerDone)
	for batch := range l.ackIn {
		res := ackResult{batch: batch, errs: make(map[*segState]error, len(batch))}
		for ss, fs := range batch {
			seqs := make([]uint64, len(fs))
			for i, f := range fs {
				seqs[i] = f.seq
			}
			res.errs[ss] = ss.seg.Ack(seqs)
		}
		l.ackOut <- res // capacity 1, one batch outstanding: never blocks
		select {
		case l.resSignal <- struct{}{}:
		default:
		}
	}
}

// flushAcks commits every acknowledgement received so far and waits for
// it, so that nothing Kafka acknowledged is left unrecorded by a clean stop.
func (l *loop) flushAcks() error {
	var errs []error
	for l.ackerAlive && (l.ackBusy || len(l.ackQueue) > 0) {
		if l.ackBusy {
			errs = append(errs, l.acked(<-l.ackOut)...)
		}
		l.dispatchAcks()
	}
	return errors.Join(errs...)
}

// stopAcker ends the acker goroutine. A batch it is committing is waited
// for; acknowledgements not yet handed to it are dropped (their events
// stay pending and are sent again: only the panic path gets here with any).
func (l *loop) stopAcker() {
	if !l.ackerAlive {
		return
	}
	if l.ackBusy {
		_ = l.acked(<-l.ackOut)
	}
	l.ackerAlive = false
	close(l.ackIn)
	<-l.ackerDone
}

// wait puts a topic in the waiting state until its backoff ends.
func (l *loop) wait(ts *topicState, reason string, now time.Time) {
	ts.lastErr = reason
	ts.skipped = true
	l.r.setHealth(func(h *Health) {
		if h.Waiting == nil {
			h.Waiting = map[string]string{}
		}
		h.Waiting[ts.name] = reason
		h.LastError, h.ErrorAt = reason, now
	})
	if l.cfg.once {
		l.stillPending[ts.name] = reason
		ts.waitUntil = now.Add(100 * 365 * 24 * time.Hour) // not again in this run
		return
	}
	if now.Before(ts.waitUntil) {
		return // one round of failures moves the backoff once
	}
	d := ts.bo.NextBackOff()
	ts.waitUntil = now.Add(d)
	l.cfg.logger.Warn("relay: topic is waiting; its events stay pending, other topics flow", "topic", ts.name, "error", reason, "retry_in", d)
}

func (l *loop) park(ss *segState, seq uint64, attempts int, reason, topic string) {
	if err := ss.seg.Park(seq, attempts, reason); err != nil {
		l.logEvery("park", "relay: park event", "segment", ss.seg.Path(), "seq", seq, "error", err)
		return
	}
	l.cfg.logger.Warn("relay: event parked; it will never be accepted as it is", "segment", ss.seg.Name(), "seq", seq, "topic", topic, "reason", reason)
	l.r.setHealth(func(h *Health) { h.Parked++ })
}

// startIsolation sends the next suspect of every isolating topic alone,
// once nothing else of that topic is in flight.
func (l *loop) startIsolation() {
	for _, ts := range l.topics {
		if !ts.isolating || ts.isoBusy || ts.inflight > 0 {
			continue
		}
		for len(ts.queue) > 0 && !ts.isoBusy {
			sort.SliceStable(ts.queue, func(i, j int) bool {
				a, b := ts.queue[i], ts.queue[j]
				if a.ss.seg.Name() != b.ss.seg.Name() {
					return a.ss.seg.Name() < b.ss.seg.Name()
				}
				return a.seq < b.seq
			})
			it := ts.queue[0]
			ts.queue = ts.queue[1:]
			recs, err := it.ss.seg.Read(it.seq-1, 1, 0)
			if err != nil || len(recs) == 0 || recs[0].Seq != it.seq {
				continue // acknowledged or parked meanwhile
			}
			ts.isoBusy = true
			l.produce(it.ss, &recs[0], true)
		}
		if len(ts.queue) == 0 && !ts.isoBusy {
			ts.isolating = false
			l.rescan = true
		}
	}
}

// release gives back sealed segments with nothing left pending.
func (l *loop) release() error {
	kept := l.segs[:0]
	for _, ss := range l.segs {
		if !ss.seg.Live() && ss.inflight == 0 && ss.seg.Pending() == 0 {
			if err := l.r.ob.Release(ss.seg); err != nil {
				l.logEvery("release", "relay: release drained segment", "segment", ss.seg.Path(), "error", err)
			}
			delete(l.byName, ss.seg.Name())
			continue
		}
		kept = append(kept, ss)
	}
	l.segs = kept
	return nil
}

func (l *loop) idle() bool {
	if len(l.inflight) > 0 || !l.readAll || l.rescan || time.Now().Before(l.globalUntil) {
		return false
	}
	for _, ts := range l.topics {
		if ts.isolating {
			return false
		}
	}
	return true
}

// finishOnce ends a Once run: nothing drainable is pending.
func (l *loop) finishOnce() error {
	err := l.shutdown()
	if len(l.stillPending) > 0 {
		var parts []string
		for t, e := range l.stillPending {
			parts = append(parts, fmt.Sprintf("topic %q: %s", t, e))
		}
		sort.Strings(parts)
		return errors.Join(err, fmt.Errorf("%w: %s", ErrStillPending, strings.Join(parts, "; ")))
	}
	return err
}

// shutdown is the bounded stop:
//  1. stop reading (fill does nothing once shutting);
//  2. flush and wait up to the drain timeout for records in flight;
//  3. record what was acknowledged;
//  4. abort what is still buffered (it stays pending) by closing the
//     client, which is what makes franz-go give up a produce whose outcome
//     is unknown (cancelling its context does not);
//  5. record any acknowledgement that raced the close, and return.
func (l *loop) shutdown() error {
	l.shutting = true
	var skipped []outbox.SegmentInfo
	for _, o := range l.others {
		if o.State == outbox.StateHeld || o.State == outbox.StateDamaged {
			skipped = append(skipped, o)
		}
	}
	l.r.mu.Lock()
	l.r.skipped = skipped
	l.r.mu.Unlock()
	l.hook("shutdown")
	var firstErr error
	if len(l.inflight) > 0 {
		dctx, cancel := context.WithTimeout(context.Background(), l.cfg.drainTimeout)
		l.flushDone = make(chan struct{})
		go func() {
			defer close(l.flushDone)
			_ = l.cl.Flush(dctx) // unlingers; returns at the deadline
		}()
		for len(l.inflight) > 0 && dctx.Err() == nil {
			select {
			case <-l.resSignal:
			case <-dctx.Done():
			}
			if err := l.process(time.Now()); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		cancel()
	}
	left := len(l.inflight) - l.acking
	if err := l.flushAcks(); err != nil && firstErr == nil {
		firstErr = err
	}
	l.abort()
	if err := l.process(time.Now()); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := l.flushAcks(); err != nil && firstErr == nil {
		firstErr = err
	}
	l.stopAcker()
	if firstErr != nil {
		return firstErr
	}
	if left > 0 {
		l.cfg.logger.Warn("relay: drain timeout; unacknowledged records stay pending", "records", left, "timeout", l.cfg.drainTimeout)
		return fmt.Errorf("%w: %d left in flight after %v", ErrDrainTimeout, left, l.cfg.drainTimeout)
	}
	return nil
}

// abort cancels every produce, closes the client and waits (bounded) for
// the promises it fails, so that no callback runs after Run returned.
func (l *loop) abort() {
	l.pcancel()
	l.cl.Close()
	if l.flushDone != nil {
		<-l.flushDone
	}
	deadline := time.Now().Add(2 * time.Second)
	for l.promises.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// logEvery logs an error at most once per backoff cap per key.
func (l *loop) logEvery(key, msg string, args ...any) {
	if l.logs.allow(key, time.Now(), l.cfg.backoffMax) {
		l.cfg.logger.Error(msg, args...)
	}
}
