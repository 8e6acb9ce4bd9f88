package outbox

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// queued returns how many ops wait for the segment's next commit.
func queued(s *Segment) int {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	return len(s.gc.queue)
}

func TestGroupCommitIsolatesFailingOp(t *testing.T) {
	o := openT(t, t.TempDir())
	s := o.Own()
	before := txID(t, s)

	// Hold a commit open so that the next three callers queue up behind it
	// and are committed together, in arrival order.
	hold, entered := make(chan struct{}), make(chan struct{})
	var release sync.Once
	// Runs before openT's Close should the test stop early.
	t.Cleanup(func() { release.Do(func() { close(hold) }) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := s.write("hold", func(tx *bolt.Tx, d *delta) error {
			close(entered)
			<-hold
			return nil
		})
		if err != nil {
			t.Errorf("holding op: %v", err)
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the holding op never started its commit")
	}

	p1, p2 := ev("t", 1), ev("t", 2)
	errP1, errP2, errBad := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	boom := errors.New("boom")
	go func() { errP1 <- o.Publish(bg, p1) }()
	waitFor(t, 5*time.Second, "first publisher to queue", func() bool { return queued(s) == 1 })
	go func() {
		errBad <- s.write("bad", func(tx *bolt.Tx, d *delta) error {
			if err := tx.Bucket(bucketMeta).Put([]byte("half-done"), []byte("x")); err != nil {
				return err
			}
			d.pendingN += 100 // must never reach the counters
			return boom
		})
	}()
	waitFor(t, 5*time.Second, "failing op to queue", func() bool { return queued(s) == 2 })
	go func() { errP2 <- o.Publish(bg, p2) }()
	waitFor(t, 5*time.Second, "second publisher to queue", func() bool { return queued(s) == 3 })
	release.Do(func() { close(hold) })
	wg.Wait()

	for name, ch := range map[string]chan error{"first": errP1, "second": errP2} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s publisher failed with its neighbour's error: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s publisher did not return", name)
		}
	}
	select {
	case err := <-errBad:
		var se *SegmentError
		if !errors.Is(err, boom) || !errors.As(err, &se) || se.Path != s.Path() {
			t.Errorf("failing op got %v, want its own error naming the segment", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("failing op did not return")
	}
	// One commit held open, one for the two publishes (the attempt that
	// included the failing op was rolled back, not committed).
	if got := txID(t, s) - before; got != 2 {
		t.Errorf("%d commits, want 2", got)
	}
	recs := readAll(t, s)
	if len(recs) != 2 || recs[0].Event.ID != p1.ID || recs[1].Event.ID != p2.ID {
		t.Fatalf("stored %v, want p1 then p2", recs)
	}
	if s.Pending() != 2 {
		t.Errorf("Pending %d, want 2: the failed op's delta leaked into the counters", s.Pending())
	}
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get([]byte("half-done")) != nil {
			return errors.New("the failing op's write was committed")
		}
		if n := getU64(tx.Bucket(bucketMeta).Get(keyPendingN)); n != 2 {
			return fmt.Errorf("stored pending counter %d, want 2", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// commitCost measures one fsynced bbolt commit on this disk, the median
// of a few, on a scratch file with the outbox's own options.
func commitCost(t *testing.T) time.Duration {
	t.Helper()
	c := defaultCfg()
	db, err := bolt.Open(t.TempDir()+"/probe.db", 0o600, boltOptions(&c, time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ds []time.Duration
	for i := range 21 {
		start := time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put(u64(uint64(i)), make([]byte, 100))
		})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// S10, one goroutine: each Publish is its own commit, made at once. With a
// batch delay (bbolt's DB.Batch waits 10 ms for company) 2,000 calls would
// take at least 20 s.
func TestS10SingleGoroutineNoBatchDelay(t *testing.T) {
	const n = 2000
	const batchDelay = 10 * time.Millisecond
	c := commitCost(t)
	// Generous for a correct outbox (about n commits), and still well
	// under what n batch delays (n × (10ms + one commit)) would cost.
	bound := max(n*batchDelay/2, 2*n*c)
	bound = min(bound, n*(batchDelay+c)*9/10)
	o := openT(t, t.TempDir())
	s := o.Own()
	before := txID(t, s)
	start := time.Now()
	for i := range n {
		if err := o.Publish(bg, ev("s10", i)); err != nil {
			t.Fatal(err)
		}
	}
	total := time.Since(start)
	t.Logf("%d publishes in %v (%v each); one commit costs %v here; bound %v", n, total, total/n, c, bound)
	if total >= bound {
		t.Errorf("%d sequential publishes took %v, bound %v: a batch delay is in the publish path", n, total, bound)
	}
	if got := txID(t, s) - before; got != n {
		t.Errorf("%d commits for %d sequential publishes, want exactly one each", got, n)
	}
	if s.Pending() != n {
		t.Errorf("pending %d, want %d", s.Pending(), n)
	}
}

// S10, concurrent: every event gets a distinct ID and its own sequence;
// each goroutine's events keep their order; commits are shared.
func TestS10ConcurrentDistinctAndOrdered(t *testing.T) {
	const G, per = 64, 200
	o := openT(t, t.TempDir())
	s := o.Own()
	before := txID(t, s)
	ids := make([][]string, G)
	var wg sync.WaitGroup
	errs := make(chan error, G)
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e := &events.Event{Topic: "s10", Subject: fmt.Sprintf("g%d", g), Data: fmt.Appendf(nil, "%d", i)}
				if err := o.Publish(bg, e); err != nil {
					errs <- err
					return
				}
				ids[g] = append(ids[g], e.ID)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	commits := txID(t, s) - before

	recs := readAll(t, s)
	if len(recs) != G*per || s.Pending() != G*per {
		t.Fatalf("%d records, %d pending; want %d", len(recs), s.Pending(), G*per)
	}
	st, err := o.Stats()
	if err != nil || st.Pending != G*per {
		t.Fatalf("Stats.Pending %d, %v; want %d", st.Pending, err, G*per)
	}
	seqOf := map[string]uint64{}
	for i, r := range recs {
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Fatalf("seq %d follows %d", r.Seq, recs[i-1].Seq)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: sequences have a gap", i, r.Seq)
		}
		if _, dup := seqOf[r.Event.ID]; dup {
			t.Fatalf("ID %s stored twice", r.Event.ID)
		}
		seqOf[r.Event.ID] = r.Seq
	}
	for g := range G {
		var last uint64
		for i, id := range ids[g] {
			seq, ok := seqOf[id]
			if !ok {
				t.Fatalf("goroutine %d's event %d (%s) is not stored", g, i, id)
			}
			if seq <= last {
				t.Fatalf("goroutine %d: event %d has seq %d after %d: one writer's order was not kept", g, i, seq, last)
			}
			last = seq
		}
	}
	t.Logf("%d events in %d commits (%.1f per commit)", G*per, commits, float64(G*per)/float64(commits))
	if commits >= G*per {
		t.Errorf("%d commits for %d concurrent publishes: group commit did not batch", commits, G*per)
	}
}
