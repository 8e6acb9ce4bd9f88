package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// openT opens the outbox in dir and closes it when the test ends (a Close
// the test already made is harmless: Close is idempotent).
func openT(t *testing.T, dir string, opts ...Option) *Outbox {
	t.Helper()
	o, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

// ev returns a small event for topic whose data names i.
func ev(topic string, i int) *events.Event {
	return &events.Event{
		Topic: topic,
		Key:   fmt.Appendf(nil, "key-%d", i%7),
		Data:  fmt.Appendf(nil, `{"i":%d}`, i),
	}
}

func publishT(t *testing.T, o *Outbox, evs ...*events.Event) {
	t.Helper()
	if err := o.Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// readAll reads every pending record of s, a page at a time.
func readAll(t *testing.T, s *Segment) []Record {
	t.Helper()
	var out []Record
	var after uint64
	for range 10_000 { // at most 10M records; far beyond any test
		recs, err := s.Read(after, 1000, 0)
		if err != nil {
			t.Fatalf("Read %s: %v", s.Name(), err)
		}
		out = append(out, recs...)
		if len(recs) < 1000 {
			return out
		}
		after = recs[len(recs)-1].Seq
	}
	t.Fatalf("Read %s: more records than any test writes", s.Name())
	return nil
}

func seqsOf(recs []Record) []uint64 {
	s := make([]uint64, len(recs))
	for i, r := range recs {
		s[i] = r.Seq
	}
	return s
}

// txID returns the id of the segment's last committed transaction: bbolt
// increments it once per commit, so the difference of two readings counts
// the commits in between exactly.
func txID(t *testing.T, s *Segment) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return id
}

// segFiles lists the segment file names in dir, sorted.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// drainView opens dir without a writer, claims what it can and returns
// every pending record by ID, plus what Claim reported about the rest. The
// handle is closed again (segments with pending events are kept).
func drainView(t *testing.T, dir string) (map[string]Record, []SegmentInfo) {
	t.Helper()
	o, err := Open(dir, WithoutWriter())
	if err != nil {
		t.Fatalf("Open WithoutWriter: %v", err)
	}
	defer func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	segs, others, err := o.Claim()
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	got := map[string]Record{}
	for _, s := range segs {
		for _, r := range readAll(t, s) {
			if r.Corrupt != nil {
				t.Errorf("segment %s seq %d: corrupt record: %v", s.Name(), r.Seq, r.Corrupt)
				continue
			}
			if _, dup := got[r.Event.ID]; dup {
				t.Errorf("event %s stored twice", r.Event.ID)
			}
			got[r.Event.ID] = r
		}
	}
	return got, others
}

// checkBolt runs bbolt's own consistency check on a segment file.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt open %s: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every millisecond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// sealedSegment makes a sealed segment in dir holding the given events
// (published by a writer that then closed) and returns its path.
func sealedSegment(t *testing.T, dir string, evs ...*events.Event) string {
	t.Helper()
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := o.Own().Path()
	if len(evs) > 0 {
		if err := o.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func names(infos []SegmentInfo) []string {
	var n []string
	for _, i := range infos {
		n = append(n, i.Name)
	}
	sort.Strings(n)
	return n
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func base(p string) string { return filepath.Base(p) }

var bg = context.Background()
