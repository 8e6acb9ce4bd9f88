package outbox

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

func TestClaimDrainsSealedSegment(t *testing.T) {
	dir := t.TempDir()
	path := sealedSegment(t, dir, ev("t", 1), ev("t", 2), ev("t", 3))
	o := openT(t, dir, WithoutWriter())
	segs, others, err := o.Claim()
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || len(others) != 0 {
		t.Fatalf("Claim: %d segments, others %+v; want the one sealed segment", len(segs), others)
	}
	s := segs[0]
	if s.Path() != path || s.Live() || s.Pending() != 3 {
		t.Fatalf("claimed %s live=%v pending=%d, want sealed %s with 3 pending", s.Path(), s.Live(), s.Pending(), path)
	}
	// Claiming again hands out the same handle, not a second open.
	again, _, err := o.Claim()
	if err != nil || len(again) != 1 || again[0] != s {
		t.Fatalf("second Claim: %v, %v; want the same *Segment", again, err)
	}
	recs := readAll(t, s)
	if err := s.Ack(seqsOf(recs[:2])); err != nil {
		t.Fatal(err)
	}
	if err := o.Release(s); err != nil {
		t.Fatal(err)
	}
	if !fileExists(path) {
		t.Fatal("Release deleted a segment that still has a pending event")
	}
	if again, _, _ := o.Claim(); len(again) != 1 || again[0] != s {
		t.Fatal("Release of a segment still pending gave it up")
	}
	if err := s.Ack(seqsOf(recs[2:])); err != nil {
		t.Fatal(err)
	}
	if err := o.Release(s); err != nil {
		t.Fatal(err)
	}
	if fileExists(path) {
		t.Error("a drained sealed segment was not deleted by Release")
	}
	if err := o.Release(s); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if segs, others, err := o.Claim(); err != nil || len(segs) != 0 || len(others) != 0 {
		t.Errorf("Claim after drain: %v %v %v, want nothing", segs, others, err)
	}
}

func TestClaimOrderOwnLast(t *testing.T) {
	dir := t.TempDir()
	p1 := sealedSegment(t, dir, ev("t", 1))
	time.Sleep(time.Millisecond) // distinct creation times in the names
	p2 := sealedSegment(t, dir, ev("t", 2))
	o := openT(t, dir)
	segs, _, err := o.Claim()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range segs {
		got = append(got, s.Path())
	}
	if want := []string{p1, p2, o.Own().Path()}; !reflect.DeepEqual(got, want) {
		t.Errorf("Claim order:\n got %v\nwant %v", got, want)
	}
	// The own segment is never released, whatever its state.
	if err := o.Release(o.Own()); err != nil || !fileExists(o.Own().Path()) {
		t.Errorf("Release(own): %v", err)
	}
}

func TestClaimDeletesEmptySealedSegment(t *testing.T) {
	// A writer killed before publishing leaves a valid, empty segment.
	dir := t.TempDir()
	c := defaultCfg()
	s, err := createSegment(dir, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	o := openT(t, dir, WithoutWriter())
	segs, others, err := o.Claim()
	if err != nil || len(segs) != 0 || len(others) != 0 {
		t.Fatalf("Claim: %v %v %v, want nothing to drain", segs, others, err)
	}
	if fileExists(s.Path()) {
		t.Error("an empty sealed segment was not deleted")
	}
}

func TestClaimDeadOnlySegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	publishT(t, w, ev("t", 1), ev("t", 2), ev("t", 3))
	path := w.Own().Path()
	recs := readAll(t, w.Own())
	for _, r := range recs[:2] {
		if err := w.Own().Park(r.Seq, 3, "MESSAGE_TOO_LARGE"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Claimed with one pending; once that is acked, Release keeps the file
	// for inspection because of the parked two.
	o := openT(t, dir, WithoutWriter())
	segs, _, err := o.Claim()
	if err != nil || len(segs) != 1 {
		t.Fatalf("Claim: %v %v", segs, err)
	}
	if err := segs[0].Ack([]uint64{recs[2].Seq}); err != nil {
		t.Fatal(err)
	}
	if err := o.Release(segs[0]); err != nil {
		t.Fatal(err)
	}
	if !fileExists(path) {
		t.Fatal("a segment with parked events was deleted")
	}
	for i := range 2 { // the second time from the skip list
		segs, others, err := o.Claim()
		if err != nil || len(segs) != 0 || len(others) != 1 {
			t.Fatalf("Claim %d: %v %+v %v, want the segment reported sealed", i, segs, others, err)
		}
		if others[0].State != StateSealed || others[0].Name != base(path) || others[0].PID != os.Getpid() {
			t.Errorf("Claim %d: %+v, want state sealed, pid %d", i, others[0], os.Getpid())
		}
	}
	// Released, so inspection can read it.
	st, err := ReadStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead != 2 || st.Pending != 0 || len(st.Held) != 0 || st.Segments != 1 {
		t.Errorf("ReadStats: %+v, want 2 dead, 0 pending, nothing held", st)
	}
	ost, err := o.Stats()
	if err != nil || ost.Dead != 2 {
		t.Errorf("Outbox.Stats: %+v, %v; want 2 dead", ost, err)
	}

	// A fresh handle finds it dead-only straight away and leaves it.
	o2 := openT(t, dir, WithoutWriter())
	segs, others, err := o2.Claim()
	if err != nil || len(segs) != 0 || len(others) != 1 || others[0].State != StateSealed {
		t.Errorf("fresh Claim: %v %+v %v", segs, others, err)
	}
	if !fileExists(path) {
		t.Error("a dead-only segment was deleted by Claim")
	}
}

func TestClaimSegmentHeldByLiveWriter(t *testing.T) {
	// bbolt's flock is per open file description, so another handle in
	// this very process holds the lock as firmly as another process would.
	dir := t.TempDir()
	w := openT(t, dir)
	publishT(t, w, ev("t", 1))
	for _, opts := range [][]Option{{WithoutWriter()}, nil} {
		o := openT(t, dir, opts...)
		start := time.Now()
		segs, others, err := o.Claim()
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if d > 500*time.Millisecond {
			t.Errorf("Claim of a held segment took %v; it must not wait", d)
		}
		if o.Own() != nil && (len(segs) != 1 || segs[0] != o.Own()) {
			t.Errorf("Claim: %v, want only the own segment", segs)
		}
		if o.Own() == nil && len(segs) != 0 {
			t.Errorf("Claim handed out %v, a segment another writer holds", segs)
		}
		if len(others) != 1 {
			t.Fatalf("others: %+v, want the live writer's segment", others)
		}
		h := others[0]
		if h.Name != w.Own().Name() || h.State != StateHeld || h.PID != os.Getpid() || !errors.Is(h.Err, ErrLocked) {
			t.Errorf("held segment reported as %+v", h)
		}
		if h.Err != nil && !strings.Contains(h.Err.Error(), w.Own().Path()) {
			t.Errorf("error %q does not name the path", h.Err)
		}
	}
	st, err := ReadStats(dir, LockTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Held) != 2 || st.LiveSegments != 2 || st.Pending != 0 {
		t.Errorf("ReadStats with two live writers: %+v, want both held and their events not counted", st)
	}
	// Once the writer closes, its segment is sealed and can be claimed at once.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	o := openT(t, dir, WithoutWriter())
	segs, _, err := o.Claim()
	if err != nil || len(segs) != 1 || segs[0].Name() != w.Own().Name() || segs[0].Pending() != 1 {
		t.Errorf("Claim after the writer closed: %v, %v", segs, err)
	}
}

// Regression: Claim read o.closed under o.mu while Close wrote it under
// closeMu (a data race), so a Claim racing Close could keep a segment
// Close never saw, leaving its file lock held until the process exits.
func TestClaimRacingClose(t *testing.T) {
	dir := t.TempDir()
	for i := range 4 {
		sealedSegment(t, dir, ev("t", i))
	}
	for round := range 20 {
		o, err := Open(dir, WithoutWriter())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		var claimErr error
		go func() {
			defer wg.Done()
			_, _, claimErr = o.Claim()
		}()
		if round%2 == 0 {
			time.Sleep(time.Duration(round) * 100 * time.Microsecond)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if claimErr != nil && !errors.Is(claimErr, ErrClosed) {
			t.Fatalf("round %d: Claim: %v", round, claimErr)
		}
		// Every lock is released: a new handle claims all four at once.
		o2, err := Open(dir, WithoutWriter())
		if err != nil {
			t.Fatal(err)
		}
		segs, others, err := o2.Claim()
		if err != nil || len(segs) != 4 || len(others) != 0 {
			t.Fatalf("round %d: after Close, Claim got %d segments, others %+v, %v: a lock was kept", round, len(segs), others, err)
		}
		if err := o2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Claim must not vet a damaged segment again at every scan while its file
// is unchanged (a vet reads the whole file), and must look again once the
// file changes.
func TestClaimRemembersDamageUntilTheFileChanges(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Publish(context.Background(), &events.Event{Topic: "t", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	path := w.Own().Path()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, len(good)) // same size, all zeros: not a bbolt file
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	d, err := Open(dir, WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	claimState := func() SegmentState {
		t.Helper()
		segs, others, err := d.Claim()
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) == 1 {
			return StateClaimed
		}
		if len(others) != 1 {
			t.Fatalf("claim: %v %+v", segs, others)
		}
		return others[0].State
	}
	if s := claimState(); s != StateDamaged {
		t.Fatalf("first claim: %s, want damaged", s)
	}
	// Repair the file behind Claim's back, keeping size and mtime: an
	// unchanged-looking file is not opened again.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if s := claimState(); s != StateDamaged {
		t.Fatalf("second claim of an unchanged file: %s, want the remembered damage", s)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if s := claimState(); s != StateClaimed {
		t.Fatalf("claim after the file changed: %s, want it claimed", s)
	}
}
