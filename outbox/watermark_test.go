package outbox

import (
	"context"
	"fmt"
	"testing"

	"github.com/boltrelay/boltrelay/events"
)

// sealedWith writes n events into a segment, closes its writer, and claims
// the sealed segment with a drain-only handle.
func sealedWith(t *testing.T, n int) (string, *Outbox, *Segment, []string) {
	t.Helper()
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < n; i++ {
		e := &events.Event{Topic: "t", Data: []byte(fmt.Sprint(i))}
		if err := w.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	segs, _, err := d.Claim()
	if err != nil || len(segs) != 1 || segs[0].Live() {
		t.Fatalf("claim: %v %v", segs, err)
	}
	return dir, d, segs[0], ids
}

func readSeqs(t *testing.T, s *Segment) []uint64 {
	t.Helper()
	recs, err := s.Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

// A sealed segment is acknowledged by watermark: out-of-order acks count
// as pending until the gap below them closes, reads skip them, parked
// records are stepped over, and acknowledged records can no longer be
// parked or failed.
func TestWatermarkAckOnSealedSegment(t *testing.T) {
	_, _, s, _ := sealedWith(t, 10)
	if err := s.Ack([]uint64{3, 4}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 10 {
		t.Fatalf("pending %d after out-of-order acks, want 10 (gap below)", p)
	}
	if got := fmt.Sprint(readSeqs(t, s)); got != "[1 2 5 6 7 8 9 10]" {
		t.Fatalf("read %s: acknowledged records must be skipped", got)
	}
	if err := s.Ack([]uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 6 {
		t.Fatalf("pending %d after the gap closed, want 6", p)
	}
	if err := s.Park(6, 1, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := s.Park(2, 1, "acknowledged already"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Fail(3, "t", "acknowledged already"); err != nil || n != 0 {
		t.Fatalf("Fail on an acknowledged record = %d, %v", n, err)
	}
	if s.Dead() != 1 || s.Pending() != 5 {
		t.Fatalf("dead %d pending %d, want 1 and 5", s.Dead(), s.Pending())
	}
	if err := s.Ack([]uint64{10, 9, 8, 7, 5, 5}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 0 {
		t.Fatalf("pending %d once all acknowledged (6 parked), want 0", p)
	}
	if got := readSeqs(t, s); len(got) != 0 {
		t.Fatalf("read %v after everything was acknowledged", got)
	}
}

// A relay that stops after acknowledging part of a sealed segment: the
// watermark survives, and so (since the review fix in settleAhead) do
// acknowledgements above it, because Close makes them durable; every
// reader — a new claim, Dump, ReadStats — agrees. A relay killed instead
// forgets those above the watermark: TestReviewKilledForgetsOnlyAhead.
func TestWatermarkSurvivesReopen(t *testing.T) {
	dir, d, s, ids := sealedWith(t, 10)
	if err := s.Ack([]uint64{1, 2, 5}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // not drained: the file stays
		t.Fatal(err)
	}
	st, err := ReadStats(dir)
	if err != nil || st.Pending != 7 || st.Segments != 1 {
		t.Fatalf("stats after reopen: %+v %v (want 7 pending: 1-2 under the watermark, 5 settled at Close)", st, err)
	}
	var dumped []string
	if _, err := Dump(dir, DumpOptions{Pending: true}, func(r Record) error { dumped = append(dumped, r.Event.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := append(append([]string{}, ids[2:4]...), ids[5:]...); fmt.Sprint(dumped) != fmt.Sprint(want) {
		t.Fatalf("dump %v, want events 3, 4, 6..10", dumped)
	}
	d2, err := Open(dir, WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	segs, _, err := d2.Claim()
	if err != nil || len(segs) != 1 {
		t.Fatal(segs, err)
	}
	if got := fmt.Sprint(readSeqs(t, segs[0])); got != "[3 4 6 7 8 9 10]" {
		t.Fatalf("read after reopen %s", got)
	}
	var all []uint64
	for i := uint64(3); i <= 10; i++ {
		all = append(all, i)
	}
	if err := segs[0].Ack(all); err != nil {
		t.Fatal(err)
	}
	if err := d2.Release(segs[0]); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStats(dir); err != nil || st.Segments != 0 {
		t.Fatalf("drained segment not deleted: %+v %v", st, err)
	}
}
