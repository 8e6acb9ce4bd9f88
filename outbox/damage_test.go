package outbox

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// damagedDir builds a directory with two good sealed segments and three
// damaged files named like segments: 64 KiB of random bytes, a real
// segment cut in half, and an empty file. It returns the good segments'
// event IDs and the damaged paths.
func damagedDir(t *testing.T) (dir string, good map[string]bool, damaged []string) {
	t.Helper()
	dir = t.TempDir()
	good = map[string]bool{}
	var evs []*events.Event
	for i := range 300 {
		evs = append(evs, &events.Event{Topic: "t", Data: bytes.Repeat([]byte{byte(i)}, 500)})
	}
	big := sealedSegment(t, dir, evs...)
	for _, e := range evs {
		good[e.ID] = true
	}
	small := []*events.Event{ev("t", 1), ev("t", 2)}
	sealedSegment(t, dir, small...)
	for _, e := range small {
		good[e.ID] = true
	}

	mk := func(b []byte) string {
		p := filepath.Join(dir, newSegmentName(time.Now()))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		damaged = append(damaged, p)
		return p
	}
	garbage := make([]byte, 64<<10)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	mk(garbage)
	real, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(real) < 64<<10 {
		t.Fatalf("test setup: the real segment is only %d bytes", len(real))
	}
	mk(real[:len(real)/2])
	mk(nil)
	return dir, good, damaged
}

func checkDamagedInfos(t *testing.T, what string, infos []SegmentInfo, damaged []string) {
	t.Helper()
	var want []string
	for _, p := range damaged {
		want = append(want, base(p))
	}
	if got := names(infos); !reflect.DeepEqual(got, sortedCopy(want)) {
		t.Errorf("%s: damaged %v, want %v", what, got, sortedCopy(want))
	}
	for _, i := range infos {
		if i.State != StateDamaged || !errors.Is(i.Err, ErrDamaged) {
			t.Errorf("%s: %s reported %s / %v, want damaged wrapping ErrDamaged", what, i.Name, i.State, i.Err)
		}
		if i.Err != nil && !strings.Contains(i.Err.Error(), filepath.Join(filepath.Dir(damaged[0]), i.Name)) {
			t.Errorf("%s: error %q does not name the path", what, i.Err)
		}
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// Regression: Claim of a truncated segment crashed the process (bbolt's
// read-write open walks the pages in a goroutine where its panic cannot be
// recovered), and read-only inspection read the missing pages from beyond
// bbolt's map of the file. A truncated file is now refused by size.
func TestDamagedSegmentsAreSkipped(t *testing.T) {
	dir, good, damaged := damagedDir(t)
	truncated := func(what string, infos []SegmentInfo) {
		t.Helper()
		for _, i := range infos {
			if i.Name == base(damaged[1]) && (i.Err == nil || !strings.Contains(i.Err.Error(), "truncated")) {
				t.Errorf("%s: the truncated segment is reported as %v, want it called truncated", what, i.Err)
			}
		}
	}

	// Inspection first (Claim would hold the good segments).
	var dumped []string
	skipped, err := Dump(dir, DumpOptions{Pending: true, Dead: true}, func(r Record) error {
		dumped = append(dumped, r.Event.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	checkDamagedInfos(t, "Dump", skipped, damaged)
	truncated("Dump", skipped)
	if len(dumped) != len(good) {
		t.Errorf("Dump visited %d records, want the %d good ones", len(dumped), len(good))
	}
	st, err := ReadStats(dir)
	if err != nil {
		t.Fatalf("ReadStats: %v", err)
	}
	checkDamagedInfos(t, "ReadStats", st.Damaged, damaged)
	truncated("ReadStats", st.Damaged)
	if st.Pending != int64(len(good)) || st.Segments != 5 {
		t.Errorf("ReadStats: %d pending in %d segments, want %d in 5", st.Pending, st.Segments, len(good))
	}

	// A writer still opens, and the good segments drain.
	o := openT(t, dir)
	segs, others, err := o.Claim()
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	checkDamagedInfos(t, "Claim", others, damaged)
	truncated("Claim", others)
	if len(segs) != 3 { // two sealed, one own
		t.Fatalf("Claim handed out %d segments, want 3", len(segs))
	}
	for _, s := range segs {
		recs := readAll(t, s)
		for _, r := range recs {
			if !good[r.Event.ID] {
				t.Errorf("unexpected record %+v", r)
			}
			delete(good, r.Event.ID)
		}
		if err := s.Ack(seqsOf(recs)); err != nil {
			t.Fatal(err)
		}
		if err := o.Release(s); err != nil {
			t.Fatal(err)
		}
	}
	if len(good) != 0 {
		t.Errorf("%d good events not drained", len(good))
	}
	publishT(t, o, ev("t", 99))
	if got := segFiles(t, dir); len(got) != 4 {
		t.Errorf("segments left: %v, want the 3 damaged ones (left alone) and the own", got)
	}
	for _, p := range damaged {
		if !fileExists(p) {
			t.Errorf("damaged %s was removed; it is to be left alone", p)
		}
	}
	if _, err := Requeue(dir, nil, LockTimeout(50*time.Millisecond)); err == nil || !errors.Is(err, ErrDamaged) {
		t.Errorf("Requeue over damaged segments: %v, want them reported", err)
	}
}

// A segment written by a newer build, or a bbolt file that is not a
// segment at all, is reported damaged rather than misread.
func TestForeignBoltFileIsDamaged(t *testing.T) {
	dir := t.TempDir()
	path := sealedSegment(t, dir, ev("t", 1))
	c := defaultCfg()
	s, err := openSegment(path, &c, time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, u64(formatVersion+1)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	o := openT(t, dir, WithoutWriter())
	segs, others, err := o.Claim()
	if err != nil || len(segs) != 0 || len(others) != 1 || others[0].State != StateDamaged ||
		!strings.Contains(others[0].Err.Error(), "version") {
		t.Fatalf("Claim of a newer-format segment: %v %+v %v", segs, others, err)
	}
}

// Dump and ReadStats open segments read-only: they never change a byte or
// a timestamp of a file.
func TestInspectionNeverModifies(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	publishT(t, w, ev("t", 1), ev("t", 2), ev("t", 3))
	recs := readAll(t, w.Own())
	if _, err := w.Own().Fail(recs[0].Seq, "t", "UNKNOWN_TOPIC_OR_PARTITION"); err != nil {
		t.Fatal(err)
	}
	if err := w.Own().Park(recs[1].Seq, 2, "INVALID_RECORD"); err != nil {
		t.Fatal(err)
	}
	path := w.Own().Path()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Step the mtime into the past so that any write would show.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	snapshot := func() ([32]byte, time.Time, int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b), fi.ModTime(), fi.Size()
	}
	sum, mtime, size := snapshot()

	n := 0
	if _, err := Dump(dir, DumpOptions{Pending: true, Dead: true}, func(Record) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("Dump: %d records, %v", n, err)
	}
	st, err := ReadStats(dir)
	if err != nil || st.Pending != 2 || st.Dead != 1 || len(st.Failing) != 1 {
		t.Fatalf("ReadStats: %+v, %v", st, err)
	}
	if st.DiskBytes != size || st.LiveBytes <= 0 || st.LiveBytes > size || st.OldestPending.IsZero() {
		t.Errorf("ReadStats sizes: disk %d live %d oldest %v (file %d bytes)", st.DiskBytes, st.LiveBytes, st.OldestPending, size)
	}
	r := openT(t, dir, WithoutWriter())
	if st, err := r.Stats(); err != nil || st.Pending != 2 {
		t.Fatalf("Outbox.Stats: %+v, %v", st, err)
	}

	sum2, mtime2, size2 := snapshot()
	if sum2 != sum || !mtime2.Equal(mtime) || size2 != size {
		t.Errorf("inspection changed the segment: sha256 %x -> %x, mtime %v -> %v, size %d -> %d", sum, sum2, mtime, mtime2, size, size2)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("inspection left files in the directory: %v", ents)
	}
}

// Regression: a read-write open (Claim, Requeue) of a segment with a
// damaged page crashed the whole process. bbolt rebuilds the freelist of
// such a file by walking its pages in a goroutine of its own, where the
// panic on the bad page cannot be recovered; the segment is now read
// through once, read-only, before it is opened for writing.
func TestCorruptPageDoesNotCrashClaim(t *testing.T) {
	dir := t.TempDir()
	var evs []*events.Event
	for i := range 300 {
		evs = append(evs, &events.Event{Topic: "t", Data: bytes.Repeat([]byte{byte(i)}, 500)})
	}
	src := sealedSegment(t, dir, evs...)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	// Overwrite the root page of the pending bucket (a reachable page,
	// not a free one nothing would ever read) with random bytes; the file
	// keeps its size and its meta pages.
	var root, pageSize int
	func() {
		p := filepath.Join(t.TempDir(), "probe")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		pageSize = db.Info().PageSize
		_ = db.View(func(tx *bolt.Tx) error {
			root = int(tx.Bucket(bucketPending).Root())
			return nil
		})
	}()
	if root < 2 {
		t.Fatalf("test setup: pending bucket root page %d", root)
	}
	if _, err := rand.Read(b[root*pageSize : (root+1)*pageSize]); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, newSegmentName(time.Now()))
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	goodEv := ev("t", 1)
	sealedSegment(t, dir, goodEv)

	o := openT(t, dir, WithoutWriter())
	segs, others, err := o.Claim()
	if err != nil {
		t.Fatal(err)
	}
	checkDamagedInfos(t, "Claim", others, []string{bad})
	if len(segs) != 1 || readAll(t, segs[0])[0].Event.ID != goodEv.ID {
		t.Errorf("Claim: %v, want the good segment", segs)
	}
	skipped, err := Dump(dir, DumpOptions{Pending: true}, func(Record) error { return nil }, LockTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var damaged []SegmentInfo
	for _, s := range skipped {
		if s.State == StateDamaged {
			damaged = append(damaged, s)
		}
	}
	checkDamagedInfos(t, "Dump", damaged, []string{bad})
	if _, err := Requeue(dir, nil, LockTimeout(50*time.Millisecond)); !errors.Is(err, ErrDamaged) {
		t.Errorf("Requeue: %v, want the damaged segment reported", err)
	}
}
