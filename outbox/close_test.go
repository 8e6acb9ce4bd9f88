package outbox

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

func TestCloseIdempotentAndFinal(t *testing.T) {
	o, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := o.Own()
	publishT(t, o, ev("t", 1))
	first := o.Close()
	if first != nil {
		t.Fatalf("Close: %v", first)
	}
	for range 3 {
		if err := o.Close(); err != first {
			t.Errorf("repeated Close returned %v, want the first result %v", err, first)
		}
	}
	e := ev("t", 2)
	if err := o.Publish(bg, e); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if e.ID != "" {
		t.Errorf("Publish after Close prepared the event (ID %s) it refused", e.ID)
	}
	if _, _, err := o.Claim(); !errors.Is(err, ErrClosed) {
		t.Errorf("Claim after Close: %v", err)
	}
	if _, err := o.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if _, err := o.Requeue(); !errors.Is(err, ErrClosed) {
		t.Errorf("Requeue after Close: %v", err)
	}
	if err := s.Ack([]uint64{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack on a closed segment: %v, want ErrClosed", err)
	}
	if err := s.Park(1, 1, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Park on a closed segment: %v, want ErrClosed", err)
	}
	if _, err := s.Fail(1, "t", "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Fail on a closed segment: %v, want ErrClosed", err)
	}
	if _, err := s.Read(0, 10, 0); err == nil {
		t.Error("Read on a closed segment succeeded")
	}
}

func TestCloseDeletesEmptyOwnSegment(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	publishT(t, o, ev("t", 1), ev("t", 2))
	if err := o.Own().Ack(seqsOf(readAll(t, o.Own()))); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if n := segFiles(t, dir); len(n) != 0 {
		t.Errorf("Close left %v; a drained own segment is deleted", n)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("Close left files behind: %v", ents)
	}
}

func TestCloseKeepsPendingAndReleasesLock(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs := []*events.Event{ev("t", 1), ev("t", 2), ev("t", 3)}
	publishT(t, o, evs...)
	recs := readAll(t, o.Own())
	if err := o.Own().Park(recs[0].Seq, 1, "parked"); err != nil {
		t.Fatal(err)
	}
	name := o.Own().Name()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if n := segFiles(t, dir); len(n) != 1 || n[0] != name {
		t.Fatalf("after Close with events pending: %v, want %s kept", n, name)
	}
	// The lock is gone: a new handle claims the sealed segment at once,
	// with the counters stored in it.
	r := openT(t, dir, WithoutWriter(), LockTimeout(100*time.Millisecond))
	start := time.Now()
	segs, others, err := r.Claim()
	if err != nil || len(segs) != 1 || len(others) != 0 {
		t.Fatalf("Claim after Close: %v %+v %v", segs, others, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Claim took %v", d)
	}
	if segs[0].Pending() != 2 || segs[0].Dead() != 1 {
		t.Errorf("reopened counters: %d pending, %d dead; want 2, 1", segs[0].Pending(), segs[0].Dead())
	}
	got := readAll(t, segs[0])
	if len(got) != 2 || got[0].Event.ID != evs[1].ID || got[1].Event.ID != evs[2].ID {
		t.Errorf("reopened records %v", got)
	}
}

// S6: Publish racing Close. Every call either fails, and its event is
// absent, or succeeds and its event is there after reopening.
func TestS6PublishDuringClose(t *testing.T) {
	const G, per = 16, 500
	dir := t.TempDir()
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		e   *events.Event
		err error
	}
	results := make([][]result, G)
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e := ev("s6", g*per+i)
				err := o.Publish(bg, e)
				results[g] = append(results[g], result{e, err})
				if err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "some publishes to land", func() bool { return o.Own().Pending() >= 100 })
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waited for every Publish in progress: nothing lands after it.
	pendingAtClose := o.Own().Pending()
	wg.Wait()

	got, others := drainView(t, dir)
	if len(others) != 0 {
		t.Errorf("after Close: %+v", others)
	}
	ok, failed := 0, 0
	for g := range G {
		for _, r := range results[g] {
			_, present := got[r.e.ID]
			switch {
			case r.err == nil && !present:
				t.Errorf("acknowledged event %s is lost", r.e.ID)
			case r.err == nil:
				ok++
			case !errors.Is(r.err, ErrClosed):
				t.Errorf("Publish during Close failed with %v, want ErrClosed", r.err)
			case present:
				t.Errorf("event %s is stored although its Publish returned %v", r.e.ID, r.err)
			default:
				failed++
			}
		}
	}
	if ok != len(got) || int64(ok) != pendingAtClose {
		t.Errorf("%d publishes succeeded, %d events stored, %d pending at Close", ok, len(got), pendingAtClose)
	}
	if failed == 0 {
		t.Errorf("no Publish ran into Close (all %d finished first); the race was not exercised", ok)
	}
	t.Logf("%d stored, %d refused", ok, failed)
}
