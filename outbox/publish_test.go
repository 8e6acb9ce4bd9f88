package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

func TestPublishReadAckRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := openT(t, dir)
	s := o.Own()
	if s == nil || !s.Live() {
		t.Fatalf("Own() = %v, want the live own segment", s)
	}

	at := time.Unix(1_700_000_000, 42).UTC()
	evs := []*events.Event{
		{Topic: "orders", Key: []byte("k1"), Data: []byte("one"), Subject: "s1", ContentType: "text/plain",
			CorrelationID: "c-1", Headers: []events.Header{{Key: "h", Value: []byte("v")}}, Time: at},
		{Topic: "orders", Key: []byte("k2"), Data: []byte("two")},
		{Topic: "audit", Data: []byte("three"), Type: "my.type", Source: "my/source"},
	}
	publishT(t, o, evs...)
	more := []*events.Event{ev("orders", 4), ev("orders", 5)}
	for _, e := range more {
		publishT(t, o, e)
	}
	all := append(evs, more...)

	seen := map[string]bool{}
	var wantBytes int64
	for i, e := range all {
		if _, err := events.IDTime(e.ID); err != nil {
			t.Errorf("event %d: ID %q filled in on the caller's struct is not a UUIDv7: %v", i, e.ID, err)
		}
		if seen[e.ID] {
			t.Errorf("event %d: ID %s repeats", i, e.ID)
		}
		seen[e.ID] = true
		if e.Time.IsZero() || e.Type == "" || e.Source == "" {
			t.Errorf("event %d: defaults not filled in: %+v", i, e)
		}
		wantBytes += int64(events.EncodedSize(e))
	}
	if !evs[0].Time.Equal(at) || evs[2].Type != "my.type" || evs[2].Source != "my/source" {
		t.Errorf("Publish overwrote fields the caller set: %+v / %+v", evs[0], evs[2])
	}
	if evs[1].Type != events.DefaultType || evs[1].Source != events.DefaultSource {
		t.Errorf("defaults: type %q source %q", evs[1].Type, evs[1].Source)
	}

	checkCounts := func(n, b int64) {
		t.Helper()
		if got := s.Pending(); got != n {
			t.Errorf("Segment.Pending = %d, want %d", got, n)
		}
		st, err := o.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != n || st.PendingBytes != b {
			t.Errorf("Stats: pending %d / %d bytes, want %d / %d", st.Pending, st.PendingBytes, n, b)
		}
	}
	checkCounts(5, wantBytes)

	recs, err := s.Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(all) {
		t.Fatalf("Read returned %d records, want %d", len(recs), len(all))
	}
	for i, r := range recs {
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Errorf("record %d: seq %d after %d, want strictly increasing", i, r.Seq, recs[i-1].Seq)
		}
		if r.Segment != s.Name() || r.Dead || r.Corrupt != nil || r.Attempts != 0 || r.Error != "" {
			t.Errorf("record %d: unexpected metadata %+v", i, r)
		}
		if r.Size != events.EncodedSize(all[i]) {
			t.Errorf("record %d: Size %d, want %d", i, r.Size, events.EncodedSize(all[i]))
		}
		if !reflect.DeepEqual(r.Event, *all[i]) {
			t.Errorf("record %d:\n got %#v\nwant %#v", i, r.Event, *all[i])
		}
	}

	// Paging: after, max and maxBytes (the first record is always returned).
	page, err := s.Read(recs[1].Seq, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqsOf(page), seqsOf(recs[2:4]); !reflect.DeepEqual(got, want) {
		t.Errorf("Read(after=%d, max=2) = %v, want %v", recs[1].Seq, got, want)
	}
	page, err = s.Read(0, 100, recs[0].Size+recs[1].Size)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 {
		t.Errorf("Read(maxBytes = size of first two) returned %d records, want 2", len(page))
	}
	page, err = s.Read(0, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 {
		t.Errorf("Read(maxBytes=1) returned %d records, want 1 (never less than one)", len(page))
	}

	// Ack the first three; a repeated Ack and one of an unknown seq change nothing.
	if err := s.Ack(seqsOf(recs[:3])); err != nil {
		t.Fatal(err)
	}
	rest := wantBytes - int64(recs[0].Size+recs[1].Size+recs[2].Size)
	checkCounts(2, rest)
	before := txID(t, s)
	if err := s.Ack(append(seqsOf(recs[:3]), 1_000_000)); err != nil {
		t.Fatalf("repeated Ack: %v", err)
	}
	if err := s.Ack(nil); err != nil {
		t.Fatalf("empty Ack: %v", err)
	}
	checkCounts(2, rest)
	if got := txID(t, s) - before; got != 1 {
		t.Errorf("repeated Ack and empty Ack made %d commits, want 1 (an empty Ack commits nothing)", got)
	}
	left, err := s.Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqsOf(left), seqsOf(recs[3:]); !reflect.DeepEqual(got, want) {
		t.Errorf("after Ack, Read = %v, want %v", got, want)
	}
	if err := s.Ack(seqsOf(left)); err != nil {
		t.Fatal(err)
	}
	checkCounts(0, 0)
}

func TestPublishEmptyAndNil(t *testing.T) {
	o := openT(t, t.TempDir())
	before := txID(t, o.Own())
	if err := o.Publish(bg); err != nil {
		t.Errorf("Publish of nothing: %v", err)
	}
	err := o.Publish(bg, ev("t", 1), nil)
	if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Publish with a nil event: %v, want ErrInvalid naming it", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := o.Publish(ctx, ev("t", 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with an ended context: %v, want context.Canceled", err)
	}
	if got := txID(t, o.Own()) - before; got != 0 || o.Own().Pending() != 0 {
		t.Errorf("%d commits, %d pending; want nothing stored", got, o.Own().Pending())
	}
}

func TestPublishWithoutWriter(t *testing.T) {
	o := openT(t, t.TempDir(), WithoutWriter())
	if o.Own() != nil {
		t.Fatal("WithoutWriter: Own() is not nil")
	}
	if err := o.Publish(bg, ev("t", 1)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Publish WithoutWriter: %v, want ErrReadOnly", err)
	}
	if n := len(segFiles(t, o.Dir())); n != 0 {
		t.Errorf("WithoutWriter created %d segment files", n)
	}
}

func TestPublishWakes(t *testing.T) {
	o := openT(t, t.TempDir())
	select {
	case <-o.Wake():
		t.Fatal("Wake fired before any Publish")
	default:
	}
	publishT(t, o, ev("t", 1))
	publishT(t, o, ev("t", 2)) // a second signal must not block Publish
	select {
	case <-o.Wake():
	default:
		t.Fatal("Wake did not fire after Publish")
	}
	select {
	case <-o.Wake():
		t.Fatal("Wake piled up signals: one receive covers several publishes")
	default:
	}
}

func TestPublishAtomicWithInvalidEvent(t *testing.T) {
	o := openT(t, t.TempDir())
	s := o.Own()
	before := txID(t, s)
	good1, bad, good2 := ev("orders", 1), &events.Event{Data: []byte("no topic")}, ev("orders", 2)
	err := o.Publish(bg, good1, bad, good2)
	if !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Publish with an empty topic: %v, want events.ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "topic is empty") {
		t.Errorf("error %q does not name the topic problem", err)
	}
	if n := s.Pending(); n != 0 {
		t.Errorf("%d events pending after a failed Publish, want 0", n)
	}
	if recs, err := s.Read(0, 10, 0); err != nil || len(recs) != 0 {
		t.Errorf("Read after a failed Publish: %d records, %v", len(recs), err)
	}
	if got := txID(t, s) - before; got != 0 {
		t.Errorf("a refused Publish made %d commits", got)
	}
	st, err := o.Stats()
	if err != nil || st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("Stats after a failed Publish: %+v, %v", st, err)
	}
	for _, bad := range []*events.Event{
		{Topic: "has space"},
		{Topic: strings.Repeat("x", events.MaxTopicLen+1)},
		{Topic: "ok", Headers: []events.Header{{Key: "ce_id"}}},
		{Topic: "ok", Subject: "line\nbreak"},
	} {
		if err := o.Publish(bg, ev("orders", 3), bad); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("Publish(%+v): %v, want ErrInvalid", bad, err)
		}
	}
	if n := s.Pending(); n != 0 {
		t.Errorf("%d events pending after refused Publishes", n)
	}
	// The outbox is still usable.
	publishT(t, o, good1, good2)
	if n := s.Pending(); n != 2 {
		t.Errorf("pending %d, want 2", n)
	}
}

func TestPublishMaxEventBytes(t *testing.T) {
	o := openT(t, t.TempDir(), MaxEventBytes(1024))
	s := o.Own()
	small := ev("big-and-small", 1)
	big := &events.Event{Topic: "big-and-small", Data: bytes.Repeat([]byte{0xAB}, 2000)}
	before := txID(t, s)
	err := o.Publish(bg, small, big)
	if !errors.Is(err, events.ErrTooLarge) {
		t.Fatalf("oversize event: %v, want events.ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "limit 1024") {
		t.Errorf("error %q does not name the limit", err)
	}
	if got := txID(t, s) - before; got != 0 || s.Pending() != 0 {
		t.Errorf("an oversize Publish made %d commits and left %d pending, want none", got, s.Pending())
	}
	// Exactly at the limit is allowed.
	exact := &events.Event{Topic: "big-and-small"}
	exact.Prepare(time.Now())
	// Without data the event costs EncodedSize; ~900 bytes of data add
	// themselves plus one more byte of length (two-byte varint).
	exact.Data = bytes.Repeat([]byte{1}, 1024-events.EncodedSize(exact)-1)
	if n := events.EncodedSize(exact); n != 1024 {
		t.Fatalf("test setup: event is %d bytes", n)
	}
	publishT(t, o, exact)

	// The default limit is 1 MiB; 0 disables it.
	def := openT(t, t.TempDir())
	huge := &events.Event{Topic: "t", Data: make([]byte, 1<<20)}
	if err := def.Publish(bg, huge); !errors.Is(err, events.ErrTooLarge) {
		t.Errorf("default limit: %v, want ErrTooLarge", err)
	}
	off := openT(t, t.TempDir(), MaxEventBytes(0))
	publishT(t, off, &events.Event{Topic: "t", Data: make([]byte, 1<<20)})
}

func TestPublishRedactorRunsBeforeWrite(t *testing.T) {
	const secret = "sk-live-0123456789abcdefghijKLMNOP"
	payload := func() []byte { return []byte(`{"user_request":"use key ` + secret + ` please"}`) }

	// rawSegment publishes one event, closes the writer (the segment keeps
	// its pending event, so Close does not delete it) and returns the file.
	rawSegment := func(t *testing.T, opts ...Option) ([]byte, *events.Event) {
		dir := t.TempDir()
		o, err := Open(dir, opts...)
		if err != nil {
			t.Fatal(err)
		}
		e := &events.Event{Data: payload(), Headers: []events.Header{{Key: "note", Value: []byte(secret)}}}
		if err := o.Publish(bg, e); err != nil {
			t.Fatal(err)
		}
		path := o.Own().Path()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b, e
	}

	var order []string
	b, e := rawSegment(t,
		Redactor(func(e *events.Event) {
			order = append(order, "first")
			e.Topic = "redacted" // runs before validation: the empty topic is filled in
			e.Data = []byte(events.Redact(string(e.Data)))
		}),
		Redactor(func(e *events.Event) {
			order = append(order, "second")
			for i := range e.Headers {
				e.Headers[i].Value = []byte(events.Redact(string(e.Headers[i].Value)))
			}
		}))
	if !reflect.DeepEqual(order, []string{"first", "second"}) {
		t.Errorf("hooks ran as %v, want first, second", order)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Error("the secret reached the segment file")
	}
	if !bytes.Contains(b, []byte(events.Redacted)) || !bytes.Contains(b, []byte(e.ID)) {
		t.Error("the redacted event is not in the segment file (the check above proves nothing)")
	}
	if bytes.Contains(e.Data, []byte(secret)) {
		t.Error("the caller's event still holds the secret")
	}

	// Control: without the hook the same bytes do reach the file, so the
	// raw-file check above can fail.
	b, _ = rawSegment(t, Redactor(func(e *events.Event) { e.Topic = "plain" }))
	if !bytes.Contains(b, []byte(secret)) {
		t.Fatal("control: an unredacted secret is not found in the raw file; the check is blind")
	}
}

func TestPublishFullEvents(t *testing.T) {
	o := openT(t, t.TempDir(), MaxPendingEvents(3))
	s := o.Own()
	var ids []string
	for i := range 3 {
		e := ev("t", i)
		publishT(t, o, e)
		ids = append(ids, e.ID)
	}
	start := time.Now()
	err := o.Publish(bg, ev("t", 3))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("4th Publish with MaxPendingEvents(3): %v, want ErrFull", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ErrFull took %v; it must return at once", d)
	}
	if !strings.Contains(err.Error(), s.Name()) {
		t.Errorf("error %q does not name the segment", err)
	}
	recs := readAll(t, s)
	if len(recs) != 3 || s.Pending() != 3 {
		t.Fatalf("%d records / %d pending after ErrFull, want the 3 stored ones", len(recs), s.Pending())
	}
	for i, r := range recs {
		if r.Event.ID != ids[i] {
			t.Errorf("record %d is %s, want %s: nothing may be dropped", i, r.Event.ID, ids[i])
		}
	}
	if err := s.Ack([]uint64{recs[0].Seq}); err != nil {
		t.Fatal(err)
	}
	// Room for one, not two: a two-event call is refused whole.
	if err := o.Publish(bg, ev("t", 4), ev("t", 5)); !errors.Is(err, ErrFull) {
		t.Errorf("two events into room for one: %v, want ErrFull", err)
	}
	if n := s.Pending(); n != 2 {
		t.Errorf("pending %d after a refused two-event call, want 2", n)
	}
	publishT(t, o, ev("t", 6))
	if n := s.Pending(); n != 3 {
		t.Errorf("pending %d, want 3", n)
	}
}

func TestPublishFullBytes(t *testing.T) {
	e0 := ev("t", 0)
	e0.Prepare(time.Now())
	size := int64(events.EncodedSize(e0))
	o := openT(t, t.TempDir(), MaxPendingBytes(2*size+size/2))
	s := o.Own()
	publishT(t, o, ev("t", 1), ev("t", 2))
	if err := o.Publish(bg, ev("t", 3)); !errors.Is(err, ErrFull) {
		t.Fatalf("Publish beyond MaxPendingBytes: %v, want ErrFull", err)
	}
	st, err := o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 2 || st.PendingBytes != 2*size {
		t.Errorf("Stats %d / %d bytes, want 2 / %d", st.Pending, st.PendingBytes, 2*size)
	}
	recs := readAll(t, s)
	if err := s.Ack([]uint64{recs[1].Seq}); err != nil {
		t.Fatal(err)
	}
	publishT(t, o, ev("t", 4))
	if n := s.Pending(); n != 2 {
		t.Errorf("pending %d, want 2", n)
	}
}

func TestBlockWhenFullReleasedByAck(t *testing.T) {
	o := openT(t, t.TempDir(), MaxPendingEvents(1), BlockWhenFull())
	s := o.Own()
	publishT(t, o, ev("t", 1))
	second := ev("t", 2)
	done := make(chan error, 1)
	// Bounded even if no Ack ever releases it (Close waits for it).
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	go func() { done <- o.Publish(ctx, second) }()
	select {
	case err := <-done:
		t.Fatalf("Publish into a full outbox returned %v instead of waiting", err)
	case <-time.After(100 * time.Millisecond):
	}
	recs := readAll(t, s)
	if len(recs) != 1 {
		t.Fatalf("%d records pending while the second Publish waits, want 1", len(recs))
	}
	if err := s.Ack([]uint64{recs[0].Seq}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("released Publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an Ack did not release the waiting Publish")
	}
	recs = readAll(t, s)
	if len(recs) != 1 || recs[0].Event.ID != second.ID {
		t.Errorf("pending after release: %v, want only the released event", recs)
	}
}

func TestBlockWhenFullContextEnds(t *testing.T) {
	o := openT(t, t.TempDir(), MaxPendingEvents(1), BlockWhenFull())
	publishT(t, o, ev("t", 1))
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := o.Publish(ctx, ev("t", 2))
	d := time.Since(start)
	if !errors.Is(err, ErrFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish whose ctx ended while full: %v, want ErrFull and DeadlineExceeded", err)
	}
	if d < 90*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %v; want when its 100ms context ended", d)
	}
	if n := o.Own().Pending(); n != 1 {
		t.Errorf("pending %d, want 1", n)
	}
}

func TestBlockWhenFullNeverFits(t *testing.T) {
	// A call larger than the limit can never fit; waiting would wait forever.
	o := openT(t, t.TempDir(), MaxPendingEvents(2), BlockWhenFull())
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	start := time.Now()
	err := o.Publish(ctx, ev("t", 1), ev("t", 2), ev("t", 3))
	if !errors.Is(err, ErrFull) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("three events under a limit of two: %v, want ErrFull at once", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Regression: a committed Publish kept its reservation until after the
// commit had already counted its events as pending, so for a moment they
// counted twice and a concurrent Publish got ErrFull (or, with
// BlockWhenFull, waited for an Ack) although there was room. Here each of
// G goroutines has at most one event reserved or pending at any time, so
// with a limit of G no Publish may ever find the outbox full.
func TestPublishFullNoDoubleCount(t *testing.T) {
	const G, rounds = 4, 150
	o := openT(t, t.TempDir(), MaxPendingEvents(G))
	s := o.Own()
	var wg sync.WaitGroup
	errs := make(chan error, G)
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				e := ev("t", g*rounds+i)
				if err := o.Publish(bg, e); err != nil {
					errs <- fmt.Errorf("goroutine %d, publish %d: %w", g, i, err)
					return
				}
				recs, err := s.Read(0, G+1, 0)
				if err != nil {
					errs <- err
					return
				}
				var seq uint64
				for _, r := range recs {
					if r.Event.ID == e.ID {
						seq = r.Seq
					}
				}
				if seq == 0 {
					errs <- fmt.Errorf("goroutine %d: published event %s not pending", g, e.ID)
					return
				}
				if err := s.Ack([]uint64{seq}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Pending(); n != 0 {
		t.Errorf("pending %d, want 0", n)
	}
	s.mu.Lock()
	rn, rb := s.reservedN, s.reservedBytes
	s.mu.Unlock()
	if rn != 0 || rb != 0 {
		t.Errorf("reservations left over: %d events, %d bytes", rn, rb)
	}
}
