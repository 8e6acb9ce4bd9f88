package outbox

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFailRecordsAttempts(t *testing.T) {
	o := openT(t, t.TempDir())
	s := o.Own()
	publishT(t, o, ev("missing-topic", 1), ev("missing-topic", 2), ev("fine", 3), ev("locked-topic", 4))
	recs := readAll(t, s)
	fail := func(i int, topic, reason string, want int) {
		t.Helper()
		n, err := s.Fail(recs[i].Seq, topic, reason)
		if err != nil || n != want {
			t.Fatalf("Fail(record %d): %d, %v; want attempt %d", i, n, err, want)
		}
	}
	fail(0, "missing-topic", "UNKNOWN_TOPIC_OR_PARTITION (first)", 1)
	fail(0, "missing-topic", "UNKNOWN_TOPIC_OR_PARTITION (second)", 2)
	fail(0, "missing-topic", "UNKNOWN_TOPIC_OR_PARTITION (third)", 3)
	fail(1, "missing-topic", "UNKNOWN_TOPIC_OR_PARTITION", 1)
	fail(3, "locked-topic", "TOPIC_AUTHORIZATION_FAILED", 1)
	if n, err := s.Fail(999, "missing-topic", "x"); n != 0 || err != nil {
		t.Errorf("Fail of a seq not pending: %d, %v; want 0, nil", n, err)
	}

	if s.Pending() != 4 {
		t.Errorf("Fail changed pending to %d", s.Pending())
	}
	st, err := o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := []FailingTopic{
		{Topic: "missing-topic", Events: 2, MaxAttempts: 3, LastError: "UNKNOWN_TOPIC_OR_PARTITION (third)"},
		{Topic: "locked-topic", Events: 1, MaxAttempts: 1, LastError: "TOPIC_AUTHORIZATION_FAILED"},
	}
	if !reflect.DeepEqual(st.Failing, want) {
		t.Errorf("Stats.Failing:\n got %+v\nwant %+v", st.Failing, want)
	}
	recs = readAll(t, s)
	if recs[0].Attempts != 3 || recs[0].Error != "UNKNOWN_TOPIC_OR_PARTITION (third)" || recs[2].Attempts != 0 || recs[2].Error != "" {
		t.Errorf("Read attempts: %+v / %+v", recs[0], recs[2])
	}
	// Acknowledging an event forgets its failures.
	if err := s.Ack([]uint64{recs[0].Seq, recs[3].Seq}); err != nil {
		t.Fatal(err)
	}
	st, err = o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want = []FailingTopic{{Topic: "missing-topic", Events: 1, MaxAttempts: 1, LastError: "UNKNOWN_TOPIC_OR_PARTITION"}}
	if !reflect.DeepEqual(st.Failing, want) {
		t.Errorf("Stats.Failing after Ack: %+v, want %+v", st.Failing, want)
	}
}

func TestParkDumpRequeue(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := o.Own()
	e1, e2, e3, e4 := ev("t", 1), ev("t", 2), ev("t", 3), ev("t", 4)
	publishT(t, o, e1, e2, e3, e4)
	recs := readAll(t, s)
	if _, err := s.Fail(recs[1].Seq, "t", "first try"); err != nil {
		t.Fatal(err)
	}
	parkedAt := time.Now()
	const reason = "MESSAGE_TOO_LARGE: 200000 bytes, limit 65536"
	if err := s.Park(recs[1].Seq, 4, reason); err != nil {
		t.Fatal(err)
	}
	if err := s.Park(recs[3].Seq, 1, "INVALID_RECORD"); err != nil {
		t.Fatal(err)
	}
	if err := s.Park(recs[3].Seq, 9, "parked twice"); err != nil { // no longer pending: nothing happens
		t.Fatal(err)
	}
	if s.Pending() != 2 || s.Dead() != 2 {
		t.Fatalf("after Park: %d pending, %d dead; want 2, 2", s.Pending(), s.Dead())
	}
	if got := seqsOf(readAll(t, s)); !reflect.DeepEqual(got, []uint64{recs[0].Seq, recs[2].Seq}) {
		t.Errorf("pending after Park: %v", got)
	}
	dead, err := s.ReadDead(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("ReadDead: %d records, want 2", len(dead))
	}
	d := dead[0]
	if !d.Dead || d.Seq != recs[1].Seq || d.Attempts != 4 || d.Error != reason || d.Event.ID != e2.ID || d.Corrupt != nil {
		t.Errorf("parked record: %+v", d)
	}
	if !reflect.DeepEqual(d.Event, *e2) {
		t.Errorf("parked event:\n got %+v\nwant %+v", d.Event, *e2)
	}
	if d.ParkedAt.Before(parkedAt.Add(-time.Second)) || d.ParkedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("ParkedAt %v, want about %v", d.ParkedAt, parkedAt)
	}
	if st, err := o.Stats(); err != nil || st.Dead != 2 || st.Pending != 2 || len(st.Failing) != 0 {
		t.Errorf("Stats after Park: %+v, %v (a parked event's failures are not 'failing')", st, err)
	}

	// The method: requeue one parked event of the own segment.
	moved, err := o.Requeue(e4.ID)
	if err != nil || !reflect.DeepEqual(moved, []string{e4.ID}) {
		t.Fatalf("Outbox.Requeue(%s): %v, %v", e4.ID, moved, err)
	}
	after := readAll(t, s)
	if len(after) != 3 || after[2].Event.ID != e4.ID || after[2].Seq <= recs[3].Seq {
		t.Errorf("requeued event should drain last under a new seq: %+v", after)
	}
	if after[2].Attempts != 0 {
		t.Errorf("requeued event kept %d attempts", after[2].Attempts)
	}
	if s.Pending() != 3 || s.Dead() != 1 {
		t.Errorf("after Requeue: %d pending, %d dead", s.Pending(), s.Dead())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	// Sealed now: Dump shows the parked record with its reason and attempts.
	var dumped []Record
	skipped, err := Dump(dir, DumpOptions{Dead: true}, func(r Record) error { dumped = append(dumped, r); return nil })
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Dump: %v, skipped %+v", err, skipped)
	}
	if len(dumped) != 1 || !dumped[0].Dead || dumped[0].Event.ID != e2.ID || dumped[0].Attempts != 4 || dumped[0].Error != reason {
		t.Fatalf("Dump{Dead}: %+v", dumped)
	}
	var pend []string
	if _, err := Dump(dir, DumpOptions{Pending: true}, func(r Record) error { pend = append(pend, r.Event.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pend, []string{e1.ID, e3.ID, e4.ID}) {
		t.Errorf("Dump{Pending}: %v", pend)
	}
	stop := errors.New("stop")
	n := 0
	if _, err := Dump(dir, DumpOptions{Pending: true, Dead: true}, func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Dump with fn failing: %v after %d records; want the fn's error after 1", err, n)
	}
	n = 0
	if _, err := Dump(dir, DumpOptions{Pending: true, Dead: true, Limit: 2}, func(Record) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("Dump Limit 2 visited %d, %v", n, err)
	}

	// The package function: an unknown ID is reported by name, a known
	// one alongside it is still moved.
	moved, err = Requeue(dir, []string{"unknown-1", e2.ID})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "unknown-1") || strings.Contains(err.Error(), e2.ID) {
		t.Errorf("Requeue with an unknown ID: %v, want ErrNotFound naming only it", err)
	}
	if !reflect.DeepEqual(moved, []string{e2.ID}) {
		t.Errorf("Requeue moved %v, want %s", moved, e2.ID)
	}
	st, err := ReadStats(dir)
	if err != nil || st.Dead != 0 || st.Pending != 4 {
		t.Errorf("ReadStats after Requeue: %+v, %v; want 4 pending, 0 dead", st, err)
	}
	if _, err := Requeue(dir, []string{e2.ID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("requeueing an event no longer parked: %v, want ErrNotFound", err)
	}
	got, _ := drainView(t, dir)
	for _, e := range []string{e1.ID, e2.ID, e3.ID, e4.ID} {
		if _, ok := got[e]; !ok {
			t.Errorf("event %s not pending after requeue", e)
		}
	}
}

func TestRequeueAllAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	for i := range 3 {
		w, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		e := ev("t", i)
		publishT(t, w, e, ev("t", 10+i))
		ids = append(ids, e.ID)
		if err := w.Own().Park(readAll(t, w.Own())[0].Seq, 2, "poison"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	moved, err := Requeue(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(moved, ids) {
		t.Errorf("Requeue(all) moved %v, want %v in drain order", moved, ids)
	}
	st, err := ReadStats(dir)
	if err != nil || st.Pending != 6 || st.Dead != 0 {
		t.Errorf("ReadStats: %+v, %v", st, err)
	}
}

// Regression: Outbox.Requeue returned nil for an ID that is not parked, so
// a typo looked like success; the package function Requeue named it with
// ErrNotFound. Both do now, and still move the IDs they do find.
func TestOutboxRequeueUnknownID(t *testing.T) {
	o := openT(t, t.TempDir())
	s := o.Own()
	e := ev("t", 1)
	publishT(t, o, e)
	if err := s.Park(readAll(t, s)[0].Seq, 1, "poison"); err != nil {
		t.Fatal(err)
	}
	moved, err := o.Requeue("no-such-id", e.ID)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no-such-id") || strings.Contains(err.Error(), e.ID) {
		t.Errorf("Outbox.Requeue with an unknown ID: %v, want ErrNotFound naming only it", err)
	}
	if !reflect.DeepEqual(moved, []string{e.ID}) || s.Pending() != 1 || s.Dead() != 0 {
		t.Errorf("moved %v (%d pending, %d dead), want the known ID moved", moved, s.Pending(), s.Dead())
	}
	if moved, err := o.Requeue(); err != nil || len(moved) != 0 {
		t.Errorf("Requeue of all with nothing parked: %v, %v", moved, err)
	}
}

func TestFailManyOneCommit(t *testing.T) {
	o := openT(t, t.TempDir())
	s := o.Own()
	publishT(t, o, ev("a", 1), ev("a", 2), ev("b", 3))
	recs := readAll(t, s)
	if _, err := s.Fail(recs[0].Seq, "a", "earlier"); err != nil {
		t.Fatal(err)
	}
	before := txID(t, s)
	err := s.FailMany([]Failure{
		{Seq: recs[0].Seq, Topic: "a", Reason: "UNKNOWN_TOPIC_OR_PARTITION"},
		{Seq: recs[2].Seq, Topic: "b", Reason: "TOPIC_AUTHORIZATION_FAILED"},
		{Seq: 999, Topic: "a", Reason: "not pending: ignored"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := txID(t, s) - before; got != 1 {
		t.Errorf("FailMany made %d commits, want 1", got)
	}
	if err := s.FailMany(nil); err != nil {
		t.Errorf("FailMany(nil): %v", err)
	}
	recs = readAll(t, s)
	if recs[0].Attempts != 2 || recs[0].Error != "UNKNOWN_TOPIC_OR_PARTITION" || recs[1].Attempts != 0 || recs[2].Attempts != 1 {
		t.Errorf("attempts after FailMany: %+v", recs)
	}
	if s.Pending() != 3 {
		t.Errorf("FailMany changed pending to %d", s.Pending())
	}
}
