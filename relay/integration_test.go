//go:build integration

// The integration suite: boltrelay against Apache Kafka itself, with kcat
// as an independent reader. It is built only with the integration tag, and
// every test is named TestIntegration... so that -run Integration selects
// the suite.
//
// Against the broker of scripts/kafka.sh (single-node KRaft Apache Kafka on
// loopback; the tests that restart, SIGKILL or stop it run too):
//
//	scripts/kafka.sh start
//	KAFKA_BROKERS=127.0.0.1:19092 BOLTRELAY_KAFKA_SCRIPT=1 go test -tags integration -race -count=1 -run Integration ./relay/
//	scripts/kafka.sh stop
//
// Against an existing cluster: set KAFKA_BROKERS to its bootstrap servers
// (comma-separated host:port) and leave BOLTRELAY_KAFKA_SCRIPT unset. The
// tests that restart, kill or stop the broker then skip, saying why (a test
// must never restart a cluster it did not start); all the others run. The
// suite creates its own topics, named boltrelay-it-<test>-<time>,
// replication factor 1, and deletes them when each test ends (the cluster
// needs delete.topic.enable, the default); it does not rely on topic
// auto-creation.
//
// Requirements: KAFKA_BROKERS set (the suite fails, never skips, without
// it) and kcat on PATH (Debian package kcat: apt-get install -y kcat).
// BOLTRELAY_KAFKA_SCRIPT=1 means "the broker at KAFKA_BROKERS was started
// by scripts/kafka.sh and may be restarted"; the tests find the script at
// ../scripts/kafka.sh from this package's directory, and check that the
// address it controls is one of KAFKA_BROKERS before touching it.
//
// integration_knownbugs_test.go holds tests of misbehaviours found against
// the real broker that the relay does not handle yet; they skip unless
// BOLTRELAY_IT_KNOWN_BUGS=1.
package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
)

// ---------------------------------------------------------------- environment

// itBrokers returns the brokers from KAFKA_BROKERS, failing the test when
// it is not set: an integration run without a broker must not pass.
func itBrokers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, b := range strings.Split(os.Getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		t.Fatal("KAFKA_BROKERS not set: start a broker with scripts/kafka.sh start, then run with KAFKA_BROKERS=127.0.0.1:19092 (see the comment at the top of relay/integration_test.go)")
	}
	return out
}

// itKafka is a test's handle on the cluster: its brokers and an admin
// client, closed at cleanup (after the topics it created were deleted).
type itKafka struct {
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
}

func itSetup(t *testing.T) *itKafka {
	t.Helper()
	brokers := itBrokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequestRetries(3), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	k := &itKafka{brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := k.adm.BrokerMetadata(ctx); err != nil {
		t.Fatalf("no Kafka answers at KAFKA_BROKERS=%s: %v (start one with scripts/kafka.sh start)", strings.Join(brokers, ","), err)
	}
	return k
}

// topicName returns a topic name unique to this test and run: the
// broker's data directory outlives runs.
func itTopicName(what string) string {
	return fmt.Sprintf("boltrelay-it-%s-%s", what, strconv.FormatInt(time.Now().UnixNano(), 36))
}

// topic creates a fresh topic (replication factor 1) and deletes it at
// cleanup. It returns once every partition has a leader.
func (k *itKafka) topic(t *testing.T, what string, partitions int32, configs map[string]*string) string {
	t.Helper()
	name := itTopicName(what)
	k.create(t, name, partitions, configs)
	k.deleteAtCleanup(t, name)
	return name
}

func (k *itKafka) create(t *testing.T, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := k.adm.CreateTopics(ctx, partitions, 1, configs, name)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	k.waitLeaders(t, name, partitions)
}

func (k *itKafka) deleteAtCleanup(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := k.adm.DeleteTopics(ctx, name)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Logf("delete topic %s: %v", name, err)
		}
	})
}

func (k *itKafka) waitLeaders(t *testing.T, name string, partitions int32) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := k.adm.Metadata(ctx, name)
		cancel()
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && int32(len(td.Partitions)) == partitions {
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
				if ready {
					return
				}
			}
		}
		if time.Now().After(end) {
			t.Fatalf("topic %s: partitions without a leader after 30s (last error %v)", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumeAll reads a topic from the start up to the end offsets it has
// now, so that everything written (duplicates included) is read and
// nothing is waited for in vain.
func (k *itKafka) consumeAll(t *testing.T, topic string, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := k.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		parts[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	done := func() bool {
		for p, e := range want {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	var out []*kgo.Record
	for !done() {
		if ctx.Err() != nil {
			t.Fatalf("consume %s: read up to offsets %v of end offsets %v within %v", topic, next, want, timeout)
		}
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Logf("consume %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// ---------------------------------------------------------------- the relay side

// itLog collects the relay's log lines: the last ones are printed when the
// test fails, the count is reported either way.
type itLog struct {
	mu    sync.Mutex
	n     int
	warns int
	lines []string
}

func (l *itLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if bytes.Contains(p, []byte("level=WARN")) || bytes.Contains(p, []byte("level=ERROR")) {
		l.warns++
	}
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > 400 {
		l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-300:]...)
	}
	return len(p), nil
}

func (l *itLog) counts() (all, warns int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.warns
}

func itLogger(t *testing.T) (*slog.Logger, *itLog) {
	l := &itLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Logf("relay log (%d lines, last %d):\n%s", l.n, len(l.lines), strings.Join(l.lines, "\n"))
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})), l
}

func itRelay(t *testing.T, ob *outbox.Outbox, k *itKafka, log *slog.Logger, opts ...Option) *Relay {
	t.Helper()
	r, err := New(ob, append([]Option{Brokers(k.brokers...), Backoff(100*time.Millisecond, 2*time.Second), Logger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pubEvent is what a test published: enough to check a delivery.
type pubEvent struct {
	ID    string
	Key   string
	N     int // index among the events of its key, from 0
	Value []byte
}

// itPublish publishes perKey events for each of keys keys to topic, the
// keys interleaved, in Publish calls of batch events; the value names the
// key and the event's index in it, so per-key order can be checked.
func itPublish(t *testing.T, ob *outbox.Outbox, topic string, keys, perKey, batch int) []pubEvent {
	t.Helper()
	var out []pubEvent
	var evs []*events.Event
	var idx []int
	flush := func() {
		if len(evs) == 0 {
			return
		}
		if err := ob.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
		for j, e := range evs {
			out = append(out, pubEvent{ID: e.ID, Key: string(e.Key), N: idx[j], Value: e.Data})
		}
		evs, idx = evs[:0], idx[:0]
	}
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("key-%02d", k)
			evs = append(evs, &events.Event{Topic: topic, Key: []byte(key), Data: []byte(fmt.Sprintf("%s:%06d", key, i))})
			idx = append(idx, i)
			if len(evs) == batch {
				flush()
			}
		}
	}
	flush()
	return out
}

// delivery is what checkDelivery found.
type delivery struct {
	records    int
	distinct   int
	duplicates int // records beyond the first of their ce_id
}

// checkDelivery checks the records read from Kafka against what was
// published: every event delivered (by ce_id), nothing unknown, value and
// key unchanged, duplicates carrying the same ce_id and value as the
// first delivery, and per key the first deliveries in publish order (an
// event delivered for the first time before an earlier one of its key is
// an order violation). It fails the test on any of these and returns the
// counts.
func checkDelivery(t *testing.T, recs []*kgo.Record, pub []pubEvent) delivery {
	t.Helper()
	byID := make(map[string]*pubEvent, len(pub))
	for i := range pub {
		byID[pub[i].ID] = &pub[i]
	}
	seen := map[string]int{}
	next := map[string]int{}     // key -> index of the next first delivery expected
	partOf := map[string]int32{} // key -> partition
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 20 {
			problems = append(problems, "...")
		}
	}
	nProblems := 0
	var d delivery
	for _, r := range recs {
		d.records++
		id, ok := HeaderValue(r, HeaderID)
		if !ok {
			nProblems++
			problem("record at %s[%d]@%d has no ce_id", r.Topic, r.Partition, r.Offset)
			continue
		}
		pe := byID[id]
		if pe == nil {
			nProblems++
			problem("record at %s[%d]@%d has unknown ce_id %s", r.Topic, r.Partition, r.Offset, id)
			continue
		}
		if string(r.Key) != pe.Key || !bytes.Equal(r.Value, pe.Value) {
			nProblems++
			problem("ce_id %s at [%d]@%d: key %q value %q, published key %q value %q", id, r.Partition, r.Offset, r.Key, r.Value, pe.Key, pe.Value)
		}
		if p, ok := partOf[pe.Key]; ok && p != r.Partition {
			nProblems++
			problem("key %s on partitions %d and %d", pe.Key, p, r.Partition)
		}
		partOf[pe.Key] = r.Partition
		seen[id]++
		if seen[id] > 1 {
			d.duplicates++
			continue
		}
		if pe.N != next[pe.Key] {
			nProblems++
			problem("key %s: event #%d (ce_id %s) first delivered at [%d]@%d while #%d had not been delivered yet", pe.Key, pe.N, id, r.Partition, r.Offset, next[pe.Key])
		}
		if pe.N >= next[pe.Key] {
			next[pe.Key] = pe.N + 1
		}
	}
	lost := 0
	for _, pe := range pub {
		if seen[pe.ID] == 0 {
			lost++
			if lost <= 5 {
				problem("event %s (key %s #%d) never delivered", pe.ID, pe.Key, pe.N)
			}
		}
	}
	d.distinct = len(seen)
	if lost > 0 {
		nProblems++
		problem("%d of %d events lost", lost, len(pub))
	}
	if d.distinct != len(pub) {
		problem("%d distinct ce_id delivered, %d published", d.distinct, len(pub))
	}
	if nProblems > 0 || d.distinct != len(pub) {
		t.Errorf("delivery check: %d records, %d distinct, %d duplicates, %d problems:\n  %s",
			d.records, d.distinct, d.duplicates, nProblems, strings.Join(problems, "\n  "))
	}
	return d
}

// murmur2 is Kafka's (Java client's) murmur2 hash, written out here so the
// relay's key partitioning is checked against an implementation that is
// not franz-go's.
func murmur2(data []byte) int32 {
	const m, r = uint32(0x5bd1e995), 24
	length := len(data)
	h := uint32(0x9747b28c) ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is Kafka's default partitioner for a keyed record.
func javaPartition(key []byte, n int32) int32 { return (murmur2(key) & 0x7fffffff) % n }

// ---------------------------------------------------------------- tests

// 1. End to end with a standalone-style drain: 1,000 events over 10 keys
// published with no relay running, the writer closed, then relay.Once on a
// WithoutWriter outbox. Every ID exactly once, order per key, the
// CloudEvents headers, the record timestamp and Kafka's key partitioning.
func TestIntegrationEndToEndOnce(t *testing.T) {
	k := itSetup(t)
	logBrokerVersion(t, k)
	// Reference values of Kafka's Utils.murmur2 (its UtilsTest).
	for s, want := range map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107} {
		if got := murmur2([]byte(s)); got != want {
			t.Fatalf("test's murmur2(%q) = %d, Kafka's is %d", s, got, want)
		}
	}
	const partitions = 3
	topic := k.topic(t, "e2e", partitions, nil)
	dir := t.TempDir()
	ob, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n, keys = 1000, 10
	pub := make([]pubEvent, 0, n)
	sent := map[string]*events.Event{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("order-%d", i%keys)
		e := &events.Event{
			Topic:         topic,
			Key:           []byte(key),
			Type:          "com.example.it.order.created",
			Source:        "/boltrelay/integration",
			Subject:       fmt.Sprintf("order/%d", i),
			ContentType:   "application/json",
			CorrelationID: fmt.Sprintf("corr-%d", i%keys),
			Headers:       []events.Header{{Key: "x-it", Value: []byte(strconv.Itoa(i))}},
			Data:          []byte(fmt.Sprintf(`{"order":%d,"key":%q,"note":"caf\u00e9 \u2713","i":%d}`, i/keys, key, i)),
		}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		pub = append(pub, pubEvent{ID: e.ID, Key: key, N: i / keys, Value: e.Data})
		sent[e.ID] = e
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}

	drain, err := outbox.Open(dir, outbox.WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	defer drain.Close()
	log, _ := itLogger(t)
	r := itRelay(t, drain, k, log, Once())
	t0 := time.Now()
	if err := runOnce(t, r, 60*time.Second); err != nil {
		t.Fatalf("Once run: %v", err)
	}
	t.Logf("Once drained %d events in %v", n, time.Since(t0))
	if h := r.Health(); h.Delivered != n || h.Parked != 0 {
		t.Fatalf("health after Once: %+v", h)
	}
	if held := r.Skipped(); len(held) != 0 {
		t.Fatalf("Once left held segments: %v", held)
	}
	st, err := drain.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Dead != 0 || st.Segments != 0 {
		t.Fatalf("outbox after the drain: %+v (want nothing pending and the drained segment deleted)", st)
	}

	recs := k.consumeAll(t, topic, 30*time.Second)
	d := checkDelivery(t, recs, pub)
	if d.duplicates != 0 || d.records != n {
		t.Fatalf("%d records for %d events (%d duplicates): a clean Once run must deliver each exactly once", d.records, n, d.duplicates)
	}
	for _, rec := range recs {
		id, _ := HeaderValue(rec, HeaderID)
		e := sent[id]
		want := []kgo.RecordHeader{
			{Key: HeaderSpecVersion, Value: []byte("1.0")},
			{Key: HeaderID, Value: []byte(e.ID)},
			{Key: HeaderType, Value: []byte(e.Type)},
			{Key: HeaderSource, Value: []byte(e.Source)},
			{Key: HeaderTime, Value: nil}, // checked below
			{Key: HeaderSubject, Value: []byte(e.Subject)},
			{Key: HeaderContentType, Value: []byte(e.ContentType)},
			{Key: HeaderCorrelationID, Value: []byte(e.CorrelationID)},
			{Key: "x-it", Value: e.Headers[0].Value},
		}
		if len(rec.Headers) != len(want) {
			t.Fatalf("ce_id %s: headers %v, want the %d of the CloudEvents binary mode plus the extra one", id, rec.Headers, len(want))
		}
		for i, h := range want {
			got := rec.Headers[i]
			if got.Key != h.Key || (h.Key != HeaderTime && !bytes.Equal(got.Value, h.Value)) {
				t.Fatalf("ce_id %s: header %d is %s=%q, want %s=%q", id, i, got.Key, got.Value, h.Key, h.Value)
			}
		}
		ts, _ := HeaderValue(rec, HeaderTime)
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !tm.Equal(e.Time) {
			t.Fatalf("ce_id %s: ce_time %q (%v), event time %v", id, ts, err, e.Time)
		}
		// The record timestamp is the produce time (see ToRecord); the
		// event time travels in ce_time.
		if rec.Timestamp.Before(e.Time.Truncate(time.Millisecond)) || time.Since(rec.Timestamp) > 5*time.Minute {
			t.Fatalf("ce_id %s: record timestamp %v, event time %v: not the produce time", id, rec.Timestamp, e.Time)
		}
		if p := javaPartition(rec.Key, partitions); rec.Partition != p {
			t.Fatalf("key %s on partition %d; Kafka's default partitioner puts it on %d", rec.Key, rec.Partition, p)
		}
	}
}

// logBrokerVersion logs what the broker says it is (franz-go's guess from
// its API versions), for the record of what ran.
func logBrokerVersion(t *testing.T, k *itKafka) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := k.adm.ApiVersions(ctx)
	if err != nil {
		t.Logf("broker API versions: %v", err)
		return
	}
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			t.Logf("broker %d API versions: %v", v.NodeID, v.Err)
			return
		}
		t.Logf("broker %d: Apache Kafka %s (guessed from its API versions)", v.NodeID, v.VersionGuess())
	})
}

// 4. A record the broker can never take: max.message.bytes=65536 and a
// 200 KB event of incompressible bytes among 19 small ones of one key. It
// is parked with the broker's reason and its size; its neighbours are
// delivered exactly once each, in order.
func TestIntegrationTooLargeParkedAlone(t *testing.T) {
	k := itSetup(t)
	limit := "65536"
	topic := k.topic(t, "toolarge", 3, map[string]*string{"max.message.bytes": &limit})
	dir := t.TempDir()
	ob := openOutbox(t, dir)
	big := make([]byte, 200_000)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	var pub []pubEvent
	var bigID string
	for i := 1; i <= 20; i++ {
		e := &events.Event{Topic: topic, Key: []byte("one-key"), Data: []byte(fmt.Sprintf("one-key:%06d", len(pub)))}
		if i == 2 {
			e.Data = big
		}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			bigID = e.ID
			continue
		}
		pub = append(pub, pubEvent{ID: e.ID, Key: "one-key", N: len(pub), Value: e.Data})
	}
	log, logs := itLogger(t)
	r := itRelay(t, ob, k, log, Once())
	t0 := time.Now()
	if err := runOnce(t, r, 60*time.Second); err != nil {
		t.Fatalf("Once run: %v", err)
	}
	all, warns := logs.counts()
	t.Logf("Once run took %v; relay logged %d lines (%d warn/error)", time.Since(t0), all, warns)
	if h := r.Health(); h.Delivered != 19 || h.Parked != 1 {
		t.Fatalf("health %+v: want 19 delivered, 1 parked", h)
	}

	recs := k.consumeAll(t, topic, 30*time.Second)
	d := checkDelivery(t, recs, pub)
	if d.records != 19 || d.duplicates != 0 {
		t.Fatalf("%d records (%d duplicates) for the 19 small events: each must be delivered exactly once", d.records, d.duplicates)
	}
	for _, rec := range recs {
		if id, _ := HeaderValue(rec, HeaderID); id == bigID {
			t.Fatalf("the 200 KB event reached Kafka at offset %d", rec.Offset)
		}
	}

	dead, err := ob.Own().ReadDead(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Event.ID != bigID {
		t.Fatalf("parked %d records, want exactly the 200 KB one (%s): %+v", len(dead), bigID, dead)
	}
	checkTooLargeReason(t, dead[0])
	if p := ob.Own().Pending(); p != 0 {
		t.Fatalf("%d events still pending", p)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	// The same through Dump, as `relay dump` shows it.
	var dumped []outbox.Record
	skipped, err := outbox.Dump(dir, outbox.DumpOptions{Pending: true, Dead: true}, func(rec outbox.Record) error {
		dumped = append(dumped, rec)
		return nil
	})
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Dump: %v, skipped %v", err, skipped)
	}
	if len(dumped) != 1 || !dumped[0].Dead || dumped[0].Event.ID != bigID || !bytes.Equal(dumped[0].Event.Data, big) {
		t.Fatalf("Dump shows %d records, want the parked 200 KB event with its data intact", len(dumped))
	}
	checkTooLargeReason(t, dumped[0])
}

var sizeRe = regexp.MustCompile(`\b(\d{6,7})\b`)

func checkTooLargeReason(t *testing.T, rec outbox.Record) {
	t.Helper()
	t.Logf("park reason (attempts %d): %s", rec.Attempts, rec.Error)
	low := strings.ToLower(rec.Error)
	if !strings.Contains(rec.Error, "MESSAGE_TOO_LARGE") && !strings.Contains(low, "too large") {
		t.Fatalf("park reason %q does not carry the broker's MESSAGE_TOO_LARGE", rec.Error)
	}
	sized := false
	for _, m := range sizeRe.FindAllStringSubmatch(rec.Error, -1) {
		if n, _ := strconv.Atoi(m[1]); n >= 200_000 && n < 201_000 {
			sized = true
		}
	}
	if !sized {
		t.Fatalf("park reason %q does not give the record's size (about 200000 bytes)", rec.Error)
	}
	if rec.Attempts < 1 {
		t.Fatalf("parked with %d attempts", rec.Attempts)
	}
}

// 5. A topic that does not exist when the relay starts, created while it
// runs: its events are delivered without a relay restart, soon after the
// topic appears, while another topic's events flowed all along.
func TestIntegrationTopicCreatedWhileRunning(t *testing.T) {
	k := itSetup(t)
	flowing := k.topic(t, "flowing", 3, nil)
	late := itTopicName("late")
	k.deleteAtCleanup(t, late)
	ob := openOutbox(t, t.TempDir())
	log, logs := itLogger(t)
	r := itRelay(t, ob, k, log, Backoff(100*time.Millisecond, 2*time.Second))
	stop := start(r)
	defer func() { _, _ = stop() }()

	latePub := itPublish(t, ob, late, 5, 20, 10)
	flowPub := itPublish(t, ob, flowing, 5, 20, 10)
	waitFor(t, "the existing topic's events delivered while the other topic is missing", 30*time.Second,
		func() bool { return r.Health().Delivered >= int64(len(flowPub)) })
	waitFor(t, "the relay to report the missing topic as waiting", 60*time.Second,
		func() bool { return r.Health().Waiting[late] != "" })
	h := r.Health()
	t.Logf("waiting reason for %s: %s", late, h.Waiting[late])
	if !strings.Contains(h.Waiting[late], "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("waiting reason %q does not name UNKNOWN_TOPIC_OR_PARTITION", h.Waiting[late])
	}
	// The failed attempts are recorded just after Health shows the topic
	// waiting: give stats a moment to show them.
	var st outbox.Stats
	waitFor(t, "stats to show the missing topic failing", 10*time.Second, func() bool {
		var err error
		if st, err = ob.Stats(); err != nil {
			t.Fatal(err)
		}
		return len(st.Failing) > 0
	})
	if st.Pending != int64(len(latePub)) || st.Dead != 0 || len(st.Failing) != 1 || st.Failing[0].Topic != late ||
		!strings.Contains(st.Failing[0].LastError, "UNKNOWN_TOPIC_OR_PARTITION") || st.Failing[0].MaxAttempts < 1 {
		t.Fatalf("stats while the topic is missing: %+v", st)
	}
	time.Sleep(2 * time.Second) // let it wait a while at backoff pace

	k.create(t, late, 3, nil)
	created := time.Now()
	waitFor(t, "the late topic's events delivered after it was created", 30*time.Second,
		func() bool { return ob.Own().Pending() == 0 })
	t.Logf("delivered %v after the topic was created", time.Since(created))
	if err, took := stop(); err != nil {
		t.Fatalf("Run: %v (stop took %v)", err, took)
	}
	all, warns := logs.counts()
	t.Logf("relay logged %d lines (%d warn/error)", all, warns)
	if h := r.Health(); h.Parked != 0 || len(h.Waiting) != 0 {
		t.Fatalf("health after delivery: %+v", h)
	}
	for _, c := range []struct {
		topic string
		pub   []pubEvent
	}{{flowing, flowPub}, {late, latePub}} {
		d := checkDelivery(t, k.consumeAll(t, c.topic, 30*time.Second), c.pub)
		if d.duplicates != 0 {
			t.Errorf("topic %s: %d duplicates, none expected (nothing of it was ever written before it existed)", c.topic, d.duplicates)
		}
	}
}

// 8. Kafka rejects a whole batch with INVALID_TIMESTAMP or INVALID_RECORD for
// one bad record, as it does with MESSAGE_TOO_LARGE. Only the culprit may
// be parked; its neighbours must be delivered once each, in order.
func TestIntegrationBatchRejectParksOnlyCulprit(t *testing.T) {
	compact := "compact"
	for _, c := range []struct {
		name    string
		configs map[string]*string
		bad     func(e *events.Event)
		reason  string
	}{
		// A compacted topic refuses a record without a key.
		{"compacted-nil-key", map[string]*string{"cleanup.policy": &compact},
			func(e *events.Event) { e.Key = nil }, "INVALID_RECORD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := itSetup(t)
			topic := k.topic(t, c.name, 1, c.configs)
			ob := openOutbox(t, t.TempDir())
			var pub []pubEvent
			var badID string
			for i := 1; i <= 20; i++ {
				e := &events.Event{Topic: topic, Key: []byte("one-key"), Data: []byte(fmt.Sprintf("one-key:%06d", len(pub)))}
				if i == 2 {
					c.bad(e)
				}
				if err := ob.Publish(context.Background(), e); err != nil {
					t.Fatal(err)
				}
				if i == 2 {
					badID = e.ID
					continue
				}
				pub = append(pub, pubEvent{ID: e.ID, Key: "one-key", N: len(pub), Value: e.Data})
			}
			log, _ := itLogger(t)
			if err := runOnce(t, itRelay(t, ob, k, log, Once()), 60*time.Second); err != nil {
				t.Fatalf("Once run: %v", err)
			}
			dead, err := ob.Own().ReadDead(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 || dead[0].Event.ID != badID || !strings.Contains(dead[0].Error, c.reason) {
				var ds []string
				for _, d := range dead {
					ds = append(ds, fmt.Sprintf("%q: %s", d.Event.Data, d.Error))
				}
				t.Fatalf("parked %d events, want only the bad one with %s:\n  %s", len(dead), c.reason, strings.Join(ds, "\n  "))
			}
			d := checkDelivery(t, k.consumeAll(t, topic, 30*time.Second), pub)
			if d.duplicates != 0 {
				t.Fatalf("%d duplicates", d.duplicates)
			}
		})
	}
}

// Regression: the record timestamp used to be the event time, and Kafka 4
// (message.timestamp.after.max.ms, 1 h by default) refused a whole batch
// for one event from a publisher whose clock ran 2 h ahead. The record
// timestamp is now the produce time and the event time travels in ce_time:
// the event is delivered, its ce_time unchanged.
func TestIntegrationFutureEventTimeDelivered(t *testing.T) {
	after := "3600000"
	k := itSetup(t)
	topic := k.topic(t, "future", 1, map[string]*string{"message.timestamp.after.max.ms": &after})
	ob := openOutbox(t, t.TempDir())
	var pub []pubEvent
	future := time.Now().Add(2 * time.Hour).UTC()
	var futureID string
	for i := 1; i <= 20; i++ {
		e := &events.Event{Topic: topic, Key: []byte("one-key"), Data: []byte(fmt.Sprintf("one-key:%06d", len(pub)))}
		if i == 2 {
			e.Time = future
		}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			futureID = e.ID
		}
		pub = append(pub, pubEvent{ID: e.ID, Key: "one-key", N: len(pub), Value: e.Data})
	}
	log, _ := itLogger(t)
	if err := runOnce(t, itRelay(t, ob, k, log, Once()), 60*time.Second); err != nil {
		t.Fatalf("Once run: %v", err)
	}
	if d := ob.Own().Dead(); d != 0 {
		t.Fatalf("%d events parked", d)
	}
	recs := k.consumeAll(t, topic, 30*time.Second)
	if d := checkDelivery(t, recs, pub); d.duplicates != 0 {
		t.Fatalf("%d duplicates", d.duplicates)
	}
	for _, r := range recs {
		if id, _ := HeaderValue(r, HeaderID); id == futureID {
			if ct, _ := HeaderValue(r, HeaderTime); ct != future.Format(time.RFC3339Nano) {
				t.Fatalf("ce_time %q, want %q", ct, future.Format(time.RFC3339Nano))
			}
		}
	}
}

// 7. kcat, an independent client (librdkafka), reads what the relay wrote:
// the CloudEvents headers and the values byte for byte, and a binary value
// through -f '%s'.
func TestIntegrationKcatReadsRelayOutput(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: install the Debian package (apt-get update && apt-get install -y kcat); the integration suite uses it as an independent Kafka client")
	}
	k := itSetup(t)
	topic := k.topic(t, "kcat", 3, nil)
	binTopic := k.topic(t, "kcat-bin", 1, nil)
	ob := openOutbox(t, t.TempDir())
	type sentEv struct{ key, typ, src string }
	sent := map[string]sentEv{}
	values := map[string][]byte{}
	for i := 0; i < 40; i++ {
		e := &events.Event{
			Topic:       topic,
			Key:         []byte(fmt.Sprintf("user-%d", i%4)),
			Type:        fmt.Sprintf("com.example.it.kcat.v%d", i%3),
			Source:      "/boltrelay/it/kcat",
			Subject:     fmt.Sprintf("s-%d", i),
			ContentType: "application/json",
			Data:        []byte(fmt.Sprintf(`{"i":%d,"text":"h\u00e9llo w\u00f6rld \u2713, [a;b] {c}","n":%d}`, i, i*i)),
		}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		sent[e.ID] = sentEv{string(e.Key), e.Type, e.Source}
		values[e.ID] = e.Data
	}
	bin := make([]byte, 4096)
	if _, err := rand.Read(bin); err != nil {
		t.Fatal(err)
	}
	copy(bin, []byte{0, '\n', '\t', 0xff, '\r', ',', '=', 0x80}) // the bytes most likely to be mangled
	if err := ob.Publish(context.Background(), &events.Event{Topic: binTopic, Key: []byte("bin"), ContentType: "application/octet-stream", Data: bin}); err != nil {
		t.Fatal(err)
	}
	log, _ := itLogger(t)
	if err := runOnce(t, itRelay(t, ob, k, log, Once()), 60*time.Second); err != nil {
		t.Fatalf("Once run: %v", err)
	}

	runKcat := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-C", "-b", strings.Join(k.brokers, ","), "-o", "beginning", "-e", "-q"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstderr: %s", strings.Join(cmd.Args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}

	out := runKcat("-t", topic, "-f", `%k\t%h\t%s\n`)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(sent) {
		t.Fatalf("kcat printed %d lines for %d events:\n%s", len(lines), len(sent), out)
	}
	got := map[string]int{}
	for _, line := range lines {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("kcat line %q is not key<TAB>headers<TAB>value", line)
		}
		hdr := map[string]string{}
		for _, kv := range strings.Split(f[1], ",") {
			name, val, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("kcat header %q in %q is not name=value", kv, f[1])
			}
			hdr[name] = val
		}
		id := hdr["ce_id"]
		want, ok := sent[id]
		if !ok {
			t.Fatalf("kcat shows ce_id %q, not one the relay was given (line %q)", id, line)
		}
		got[id]++
		if f[0] != want.key || hdr["ce_type"] != want.typ || hdr["ce_source"] != want.src || hdr["ce_specversion"] != "1.0" ||
			hdr["content-type"] != "application/json" {
			t.Fatalf("kcat line %q: want key %q, ce_type %q, ce_source %q, ce_specversion 1.0, content-type application/json", line, want.key, want.typ, want.src)
		}
		if _, err := time.Parse(time.RFC3339Nano, hdr["ce_time"]); err != nil {
			t.Fatalf("kcat ce_time %q: %v", hdr["ce_time"], err)
		}
		if f[2] != string(values[id]) {
			t.Fatalf("ce_id %s: kcat value %q, published %q", id, f[2], values[id])
		}
	}
	for id := range sent {
		if got[id] != 1 {
			t.Fatalf("ce_id %s seen %d times by kcat", id, got[id])
		}
	}

	binOut := runKcat("-t", binTopic, "-f", "%s")
	path := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(path, binOut, 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(binOut, bin) {
		t.Fatalf("binary value through kcat: %d bytes (in %s), published %d; first differing byte at %d", len(binOut), path, len(bin), firstDiff(binOut, bin))
	}
	if hdrs := string(runKcat("-t", binTopic, "-f", "%k %h")); !strings.HasPrefix(hdrs, "bin ") || !strings.Contains(hdrs, "content-type=application/octet-stream") {
		t.Fatalf("binary record's key and headers through kcat: %q", hdrs)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
