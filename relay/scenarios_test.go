package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
)

// helpers

func openOutbox(t *testing.T, dir string, opts ...outbox.Option) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ob.Close() })
	return ob
}

func publishN(t *testing.T, ob *outbox.Outbox, topic, key string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		e := &events.Event{Topic: topic, Key: []byte(key), Data: []byte(fmt.Sprintf("%s-%d", key, i))}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func newRelay(t *testing.T, ob *outbox.Outbox, c *kfake.Cluster, opts ...Option) *Relay {
	t.Helper()
	r, err := New(ob, append([]Option{Brokers(c.ListenAddrs()...), Backoff(20*time.Millisecond, 500*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runOnce(t *testing.T, r *Relay, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.Run(ctx)
}

// start runs r in a goroutine the embedded way; the returned stop cancels
// it and waits, returning Run's error and how long the stop took.
func start(r *Relay) (stop func() (error, time.Duration)) {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	wg.Add(1)
	go func() { defer wg.Done(); err = r.Run(ctx) }()
	return func() (error, time.Duration) {
		t0 := time.Now()
		cancel()
		wg.Wait()
		return err, time.Since(t0)
	}
}

func pendingIn(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := outbox.ReadStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Held) > 0 {
		t.Fatalf("segments still held: %v", st.Held)
	}
	return st.Pending
}

func idCounts(recs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		id, _ := HeaderValue(r, HeaderID)
		m[id]++
	}
	return m
}

// freezeProduce makes the cluster read produce requests and never answer
// them while frozen is set: a broker that accepts and then vanishes.
func freezeProduce(c *kfake.Cluster, frozen *atomic.Bool, seen *atomic.Int64) {
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if frozen.Load() {
			seen.Add(1)
			return nil, nil, true
		}
		return nil, nil, false
	})
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// S1: a long linger must neither lose the buffer at stop nor delay the stop.
func TestS1ShutdownDoesNotForgetBuffer(t *testing.T) {
	c := kafkatest.Cluster(t, "t1")
	dir := t.TempDir()
	ob := openOutbox(t, dir)
	ids := publishN(t, ob, "t1", "k", 5)
	r := newRelay(t, ob, c, KafkaOpts(kgo.ProducerLinger(30*time.Second), kgo.ProducerBatchMaxBytes(16<<20)), DrainTimeout(3*time.Second))
	stop := start(r)
	err, took := stop()
	if err != nil && !errors.Is(err, ErrDrainTimeout) {
		t.Fatal(err)
	}
	if took > 5*time.Second {
		t.Fatalf("stop took %v: it waited out the linger", took)
	}
	delivered := idCounts(kafkatest.ConsumeIdle(t, c.ListenAddrs(), 500*time.Millisecond, 5*time.Second, "t1"))
	pending := ob.Own().Pending()
	if int64(len(delivered))+pending != int64(len(ids)) {
		t.Fatalf("delivered %d + pending %d != published %d", len(delivered), pending, len(ids))
	}
	// Nothing deleted that Kafka did not acknowledge: every event no longer
	// pending must be in Kafka.
	recs, err := ob.Own().Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	stillPending := map[string]bool{}
	for _, rec := range recs {
		stillPending[rec.Event.ID] = true
	}
	for _, id := range ids {
		if !stillPending[id] && delivered[id] == 0 {
			t.Fatalf("event %s deleted but not in Kafka", id)
		}
	}
}

// S2: a produce whose outcome is unknown must not hold the stop.
func TestS2UnknownOutcomeStopIsBounded(t *testing.T) {
	for _, variant := range []struct {
		name string
		opts []kgo.Opt
	}{{"default", nil}, {"buffer-1", []kgo.Opt{kgo.MaxBufferedRecords(1)}}} {
		t.Run(variant.name, func(t *testing.T) {
			c := kafkatest.Cluster(t, "t2")
			var frozen atomic.Bool
			var seen atomic.Int64
			frozen.Store(true)
			freezeProduce(c, &frozen, &seen)
			dir := t.TempDir()
			ob := openOutbox(t, dir)
			ids := publishN(t, ob, "t2", "k", 20)
			drain := time.Second
			r := newRelay(t, ob, c, DrainTimeout(drain), KafkaOpts(variant.opts...))
			stop := start(r)
			waitFor(t, "a produce request to reach the frozen broker", 10*time.Second, func() bool { return seen.Load() > 0 })
			err, took := stop()
			if !errors.Is(err, ErrDrainTimeout) {
				t.Fatalf("Run = %v, want ErrDrainTimeout", err)
			}
			if took > drain+3*time.Second {
				t.Fatalf("stop took %v with drain timeout %v", took, drain)
			}
			if p := ob.Own().Pending(); p != int64(len(ids)) {
				t.Fatalf("pending %d after aborted stop, want %d", p, len(ids))
			}
			// A later run delivers them all.
			frozen.Store(false)
			r2 := newRelay(t, ob, c, Once(), KafkaOpts(variant.opts...))
			if err := runOnce(t, r2, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			got := idCounts(kafkatest.Consume(t, c.ListenAddrs(), len(ids), 10*time.Second, "t2"))
			for _, id := range ids {
				if got[id] < 1 || got[id] > 2 {
					t.Fatalf("event %s delivered %d times", id, got[id])
				}
			}
			if p := ob.Own().Pending(); p != 0 {
				t.Fatalf("pending %d after second run", p)
			}
		})
	}
}

// S3: one event for a missing topic must not hold up its neighbours.
func TestS3MissingTopicDoesNotPoisonNeighbours(t *testing.T) {
	for _, retries := range []int{0, 3} {
		t.Run(fmt.Sprintf("retries-%d", retries), func(t *testing.T) {
			c := kafkatest.Cluster(t, "good")
			dir := t.TempDir()
			ob := openOutbox(t, dir)
			var ids []string
			for i := 1; i <= 10; i++ {
				topic := "good"
				if i == 2 {
					topic = "missing"
				}
				e := &events.Event{Topic: topic, Key: []byte("k"), Data: []byte(fmt.Sprintf("E%d", i))}
				if err := ob.Publish(context.Background(), e); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			r := newRelay(t, ob, c, Once(), Retries(retries))
			err := runOnce(t, r, 60*time.Second)
			if !errors.Is(err, ErrStillPending) || !strings.Contains(err.Error(), `"missing"`) {
				t.Fatalf("Run = %v, want ErrStillPending naming the topic", err)
			}
			recs := kafkatest.ConsumeIdle(t, c.ListenAddrs(), 500*time.Millisecond, 10*time.Second, "good")
			if len(recs) != 9 {
				t.Fatalf("delivered %d records, want 9", len(recs))
			}
			want := append([]string{ids[0]}, ids[2:]...)
			for i, rec := range recs {
				if id, _ := HeaderValue(rec, HeaderID); id != want[i] {
					t.Fatalf("record %d is %s, want %s (order or duplicates wrong)", i, id, want[i])
				}
			}
			st, err := ob.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending != 1 || st.Dead != 0 || len(st.Failing) != 1 || st.Failing[0].Topic != "missing" ||
				st.Failing[0].MaxAttempts < 1 || !strings.Contains(st.Failing[0].LastError, "UNKNOWN_TOPIC_OR_PARTITION") {
				t.Fatalf("stats %+v", st)
			}
			left, err := ob.Own().Read(0, 10, 0)
			if err != nil || len(left) != 1 || left[0].Event.ID != ids[1] || left[0].Attempts < 1 {
				t.Fatalf("pending %+v, %v", left, err)
			}
		})
	}
}

func createTopic(t *testing.T, c *kfake.Cluster, topic string, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(context.Background(), 1, 1, configs, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// S4: a record the broker can never take is parked alone.
func TestS4TooLargeRecordParkedAlone(t *testing.T) {
	c := kafkatest.Cluster(t)
	limit := "65536"
	createTopic(t, c, "small", map[string]*string{"max.message.bytes": &limit})
	var produces atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		return nil, nil, false
	})
	dir := t.TempDir()
	ob := openOutbox(t, dir)
	big := make([]byte, 200_000)
	_, _ = rand.Read(big)
	var ids []string
	for i := 1; i <= 20; i++ {
		e := &events.Event{Topic: "small", Key: []byte("one-key"), Data: []byte(fmt.Sprintf("E%d", i))}
		if i == 2 {
			e.Data = big
		}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	r := newRelay(t, ob, c, Once())
	if err := runOnce(t, r, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	got := kafkatest.ConsumeIdle(t, c.ListenAddrs(), 500*time.Millisecond, 10*time.Second, "small")
	counts := idCounts(got)
	for i, id := range ids {
		want := 1
		if i == 1 {
			want = 0
		}
		if counts[id] != want {
			t.Fatalf("E%d delivered %d times, want %d", i+1, counts[id], want)
		}
	}
	dead, err := ob.Own().ReadDead(0, 10)
	if err != nil || len(dead) != 1 || dead[0].Event.ID != ids[1] {
		t.Fatalf("dead %v, %v", dead, err)
	}
	if !strings.Contains(dead[0].Error, "MESSAGE_TOO_LARGE") || !strings.Contains(dead[0].Error, "200") {
		t.Fatalf("park reason %q lacks the broker's reason or the size", dead[0].Error)
	}
	// No retry loop: nothing more is produced once the run is over.
	before := produces.Load()
	time.Sleep(500 * time.Millisecond)
	if after := produces.Load(); after != before {
		t.Fatalf("produce requests went on after the run: %d -> %d", before, after)
	}

	// With a max event size, Publish refuses it at once and stores nothing.
	ob2 := openOutbox(t, t.TempDir(), outbox.MaxEventBytes(64<<10))
	err = ob2.Publish(context.Background(), &events.Event{Topic: "small", Data: big})
	if !errors.Is(err, events.ErrTooLarge) || ob2.Own().Pending() != 0 {
		t.Fatalf("Publish of 200 KB with a 64 KiB limit = %v, pending %d", err, ob2.Own().Pending())
	}
}

// S5: acknowledgements must be recorded before the outbox closes, and a
// send that failed during shutdown must stay pending.
func TestS5ShutdownOrder(t *testing.T) {
	c := kafkatest.Cluster(t, "t5")
	var frozen atomic.Bool
	var seen atomic.Int64
	frozen.Store(true)
	freezeProduce(c, &frozen, &seen)
	dir := t.TempDir()
	ob, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := publishN(t, ob, "t5", "k", 10)
	r := newRelay(t, ob, c, DrainTimeout(300*time.Millisecond))
	stop := start(r)
	waitFor(t, "produce", 10*time.Second, func() bool { return seen.Load() > 0 })
	if err, _ := stop(); !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("Run = %v", err)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if p := pendingIn(t, dir); p != int64(len(ids)) {
		t.Fatalf("pending %d after failed sends, want %d", p, len(ids))
	}

	// The wrong order (outbox closed under a running relay) must end Run
	// with ErrClosed, not a hang or a panic, and lose nothing.
	frozen.Store(false)
	ob2, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	more := publishN(t, ob2, "t5", "k2", 5)
	_ = more
	r2 := newRelay(t, ob2, c)
	stop2 := start(r2)
	_ = ob2.Close()
	errRun, took := stop2()
	if errRun != nil && !errors.Is(errRun, outbox.ErrClosed) && !errors.Is(errRun, ErrDrainTimeout) {
		t.Fatalf("Run after Close = %v", errRun)
	}
	if took > 10*time.Second {
		t.Fatalf("stop took %v", took)
	}
	delivered := idCounts(kafkatest.ConsumeIdle(t, c.ListenAddrs(), 500*time.Millisecond, 5*time.Second, "t5"))
	left := map[string]bool{}
	_, err = outbox.Dump(dir, outbox.DumpOptions{Pending: true}, func(rec outbox.Record) error { left[rec.Event.ID] = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, more...) {
		if !left[id] && delivered[id] == 0 {
			t.Fatalf("event %s neither pending nor delivered", id)
		}
	}
}

// S6: Publish racing relay stop and outbox Close either fails or is
// delivered later.
func TestS6PublishWhileShuttingDown(t *testing.T) {
	c := kafkatest.Cluster(t, "t6")
	dir := t.TempDir()
	ob, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, ob, c)
	stop := start(r)
	var mu sync.Mutex
	var okIDs []string
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e := &events.Event{Topic: "t6", Key: []byte(fmt.Sprint(g)), Data: []byte("x")}
				if err := ob.Publish(context.Background(), e); err != nil {
					if !errors.Is(err, outbox.ErrClosed) {
						t.Errorf("Publish: %v", err)
					}
					return
				}
				mu.Lock()
				okIDs = append(okIDs, e.ID)
				mu.Unlock()
			}
		}(g)
	}
	time.Sleep(20 * time.Millisecond)
	_, _ = stop()
	_ = ob.Close()
	wg.Wait()
	ob2, err := outbox.Open(dir, outbox.WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	defer ob2.Close()
	if err := runOnce(t, newRelay(t, ob2, c, Once()), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	got := idCounts(kafkatest.Consume(t, c.ListenAddrs(), len(okIDs), 10*time.Second, "t6"))
	for _, id := range okIDs {
		if got[id] == 0 {
			t.Fatalf("acknowledged publish %s never delivered (of %d)", id, len(okIDs))
		}
	}
	if len(okIDs) == 0 {
		t.Fatal("no publish succeeded: the race was not exercised")
	}
}

// Regression: Kafka fails every record of a batch with INVALID_RECORD (or
// INVALID_TIMESTAMP) for one bad record. Parking every record that came
// back with a permanent error parked the innocent neighbours too.
func TestPermanentBatchErrorParksOnlyWhatFailsAlone(t *testing.T) {
	c := kafkatest.Cluster(t, "tb")
	ob := openOutbox(t, t.TempDir())
	// The first produce request carrying tb is rejected whole; each
	// record sent alone afterwards is accepted.
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "tb", Err: kerr.InvalidRecord, Count: 1})
	ids := publishN(t, ob, "tb", "k", 20)
	if err := runOnce(t, newRelay(t, ob, c, Once()), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if h.Hits() != 1 {
		t.Fatalf("fault hit %d times, want 1", h.Hits())
	}
	if d := ob.Own().Dead(); d != 0 {
		t.Fatalf("%d events parked for a batch rejection that none of them caused alone", d)
	}
	recs := kafkatest.ConsumeIdle(t, c.ListenAddrs(), 500*time.Millisecond, 10*time.Second, "tb")
	if len(recs) != len(ids) {
		t.Fatalf("delivered %d, want %d", len(recs), len(ids))
	}
	for i, rec := range recs {
		if id, _ := HeaderValue(rec, HeaderID); id != ids[i] {
			t.Fatalf("record %d is %s, want %s", i, id, ids[i])
		}
	}
}

// Regression: an event under the outbox's default MaxEventBytes (1 MiB)
// that the broker accepts was refused inside franz-go (its default
// ProducerBatchMaxBytes is 1000012) and parked as MESSAGE_TOO_LARGE.
func TestEventNearOneMiBDelivered(t *testing.T) {
	c := kafkatest.Cluster(t, "big")
	ob := openOutbox(t, t.TempDir())
	e := &events.Event{Topic: "big", Key: []byte("k"), Data: make([]byte, 1_010_000)}
	if err := ob.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := runOnce(t, newRelay(t, ob, c, Once()), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, _ := ob.Own().ReadDead(0, 1); len(d) != 0 {
		t.Fatalf("parked: %s", d[0].Error)
	}
	recs := kafkatest.Consume(t, c.ListenAddrs(), 1, 10*time.Second, "big")
	if len(recs) != 1 || len(recs[0].Value) != len(e.Data) {
		t.Fatalf("got %d records", len(recs))
	}
}
