package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storedCounters reads the counters a reopen would load.
func storedCounters(t *testing.T, s *Segment) (n, wm uint64) {
	t.Helper()
	if err := s.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		n, wm = getU64(m.Get(keyPendingN)), getU64(m.Get(keyAckedThrough))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n, wm
}

// Regression (review): Park of the one record below a run of out-of-order
// acknowledgements did not move the watermark. Records 2..10 acknowledged
// ahead of 1, then 1 parked (the relay parks a too-large record only after
// re-sending it alone, so its neighbours' acks usually come first): nothing
// was pending any more, yet Pending stayed 9 until another Ack came — which
// for the last gap of a segment never does. The segment was never released
// or deleted, and after a restart 2..10 were sent again.
func TestReviewParkOfGapMovesWatermark(t *testing.T) {
	dir, d, s, _ := sealedWith(t, 10)
	if err := s.Ack([]uint64{2, 3, 4, 5, 6, 7, 8, 9, 10}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 10 {
		t.Fatalf("pending %d with the gap at 1 open, want 10", p)
	}
	if err := s.Park(1, 1, "too large"); err != nil {
		t.Fatal(err)
	}
	if p, dn := s.Pending(), s.Dead(); p != 0 || dn != 1 {
		t.Fatalf("after parking the gap: pending %d dead %d, want 0 and 1", p, dn)
	}
	if n, wm := storedCounters(t, s); n != 0 || wm != 10 {
		t.Fatalf("stored pending_n %d acked_through %d, want 0 and 10", n, wm)
	}
	if err := d.Release(s); err != nil {
		t.Fatal(err)
	}
	// Reopened: nothing is sent again, the parked record is still there.
	st, err := ReadStats(dir)
	if err != nil || st.Pending != 0 || st.Dead != 1 {
		t.Fatalf("stats after release: %+v %v", st, err)
	}
	var pending int
	if _, err := Dump(dir, DumpOptions{Pending: true}, func(Record) error { pending++; return nil }); err != nil || pending != 0 {
		t.Fatalf("dump after release: %d pending, %v", pending, err)
	}
	// The same when Park and Ack share one commit, in either order.
	for _, parkFirst := range []bool{false, true} {
		_, _, s, _ := sealedWith(t, 4)
		hold, entered := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			_ = s.write("hold", func(*bolt.Tx, *delta) error { close(entered); <-hold; return nil })
		}()
		<-entered
		first := func() { defer wg.Done(); _ = s.Ack([]uint64{2, 3, 4}) }
		second := func() { defer wg.Done(); _ = s.Park(1, 1, "bad") }
		if parkFirst {
			first, second = second, first
		}
		go first()
		waitFor(t, 5*time.Second, "first op queued", func() bool { return queued(s) == 1 })
		go second()
		waitFor(t, 5*time.Second, "second op queued", func() bool { return queued(s) == 2 })
		close(hold)
		wg.Wait()
		if p := s.Pending(); p != 0 {
			t.Fatalf("park first %v: pending %d after one commit of Ack(2,3,4) and Park(1), want 0", parkFirst, p)
		}
		if n, wm := storedCounters(t, s); n != 0 || wm != 4 {
			t.Fatalf("park first %v: stored pending_n %d acked_through %d", parkFirst, n, wm)
		}
	}
}

// The committer re-runs a batch without its failed op. Two watermark Acks
// in one batch with a failing op between them (one that dirtied the delta
// before failing): the retry must count each covered record once, keep
// the out-of-order ack, and book nothing of the failed op.
func TestReviewWatermarkAcksSurviveBatchRetry(t *testing.T) {
	_, _, s, _ := sealedWith(t, 10)
	hold, entered := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.write("hold", func(*bolt.Tx, *delta) error { close(entered); <-hold; return nil })
	}()
	<-entered
	boom := errors.New("boom")
	errs := make([]chan error, 4)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	ops := []func() error{
		func() error { return s.Ack([]uint64{2, 1, 7}) },
		func() error {
			return s.write("bad", func(tx *bolt.Tx, d *delta) error {
				d.pendingN -= 100
				d.wm = 9
				d.ackAdd = append(d.ackAdd, 5)
				d.ackCover = append(d.ackCover, 3)
				if err := tx.Bucket(bucketMeta).Put(keyAckedThrough, u64(9)); err != nil {
					return err
				}
				return boom
			})
		},
		func() error { return s.Ack([]uint64{3, 2, 4}) },
		func() error { return s.Ack([]uint64{9, 4}) },
	}
	for i, op := range ops {
		go func() { errs[i] <- op() }()
		waitFor(t, 5*time.Second, fmt.Sprintf("op %d queued", i), func() bool { return queued(s) == i+1 })
	}
	close(hold)
	wg.Wait()
	for i, ch := range errs {
		err := <-ch
		if (i == 1) != errors.Is(err, boom) {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	// 1..4 covered; 7 and 9 acknowledged ahead of the gap at 5.
	if p := s.Pending(); p != 6 {
		t.Fatalf("pending %d, want 6 (5..10)", p)
	}
	if n, wm := storedCounters(t, s); n != 6 || wm != 4 {
		t.Fatalf("stored pending_n %d acked_through %d, want 6 and 4", n, wm)
	}
	if got := fmt.Sprint(readSeqs(t, s)); got != "[5 6 8 10]" {
		t.Fatalf("read %s, want [5 6 8 10]", got)
	}
	if err := s.Ack([]uint64{5, 6, 8, 10}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 0 || len(s.ackedAhead) != 0 {
		t.Fatalf("pending %d ahead %v once all acknowledged", p, s.ackedAhead)
	}
}

// Regression (review): a record's failed attempts (a waiting topic) stayed
// in the attempts bucket once the watermark covered it, so Stats.Failing
// kept naming the topic, with its old error, after the events were
// delivered, for as long as anything else in the segment was pending.
func TestReviewStatsFailingForgetsAcknowledged(t *testing.T) {
	_, d, s, _ := sealedWith(t, 3)
	if err := s.FailMany([]Failure{{Seq: 1, Topic: "gone", Reason: "UNKNOWN_TOPIC_OR_PARTITION"}, {Seq: 3, Topic: "gone", Reason: "UNKNOWN_TOPIC_OR_PARTITION"}}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stats()
	if err != nil || len(st.Failing) != 1 || st.Failing[0].Events != 2 {
		t.Fatalf("stats with two failing: %+v %v", st.Failing, err)
	}
	// 1 covered by the watermark, 3 acknowledged ahead of 2.
	if err := s.Ack([]uint64{1, 3}); err != nil {
		t.Fatal(err)
	}
	st, err = d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 2 || len(st.Failing) != 0 {
		t.Fatalf("after both failing records were delivered: pending %d, failing %+v (want none)", st.Pending, st.Failing)
	}
}

const reviewAckDirEnv = "BOLTRELAY_OUTBOX_REVIEW_ACK_DIR"

// TestReviewAckChild is a child process, not a test: it claims the sealed
// segment in its directory, acknowledges 1, 2 and 5, says so, and waits to
// be killed.
func TestReviewAckChild(t *testing.T) {
	dir := os.Getenv(reviewAckDirEnv)
	if dir == "" {
		t.Skip("child of TestReviewKilledForgetsOnlyAhead")
	}
	d, err := Open(dir, WithoutWriter())
	if err != nil {
		os.Exit(2)
	}
	segs, _, err := d.Claim()
	if err != nil || len(segs) != 1 || segs[0].Ack([]uint64{1, 2, 5}) != nil {
		os.Exit(3)
	}
	fmt.Println("ACKED")
	time.Sleep(30 * time.Second)
	os.Exit(4)
}

// A relay process SIGKILLed after acknowledging 1, 2 and 5 of a sealed
// segment: the watermark (2) is on disk, the acknowledgement of 5 above it
// is not (5 is sent again), and the counters agree with the readers. The
// clean-stop counterpart is TestWatermarkSurvivesReopen.
func TestReviewKilledForgetsOnlyAhead(t *testing.T) {
	dir, d, _, ids := sealedWith(t, 10)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReviewAckChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), reviewAckDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ACKED" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	st, err := ReadStats(dir)
	if err != nil || st.Pending != 8 || st.Segments != 1 || len(st.Held) != 0 {
		t.Fatalf("stats after the kill: %+v %v (want 8 pending)", st, err)
	}
	var dumped []string
	if _, err := Dump(dir, DumpOptions{Pending: true}, func(r Record) error { dumped = append(dumped, r.Event.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dumped) != fmt.Sprint(ids[2:]) {
		t.Fatalf("dump %v, want events 3..10", dumped)
	}
}
