package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

// published is what the test handed to relay publish, by event ID.
type published struct {
	index             int
	topic, key        string
	value             []byte
	typ, source, subj string
	contentType       string
	headers           map[string]string
	before, after     time.Time // the publish process ran between these
}

// TestEndToEndThroughBinary: 50 separate `relay publish` processes with no
// broker anywhere, then a broker, `relay run --once`, and everything read
// back from Kafka exactly once, in order per key, with the CloudEvents
// headers and the values unchanged.
func TestEndToEndThroughBinary(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox") // publish creates it
	topics := []string{"e2e-orders", "e2e-blobs"}
	binary := []byte{0xff, 0xfe, 0x00, 0x01, 0x80, 'x', 0xc3}
	binFile := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(binFile, binary, 0o600); err != nil {
		t.Fatal(err)
	}

	const n = 50
	want := map[string]*published{}
	for i := 0; i < n; i++ {
		p := &published{index: i, topic: topics[0], key: fmt.Sprintf("key-%d", i%5),
			value: []byte(fmt.Sprintf(`{"n":%d}`, i)), typ: events.DefaultType, source: events.DefaultSource,
			headers: map[string]string{}}
		args := []string{"publish", "--outbox", dir, "--topic", p.topic, "--key", p.key}
		var stdin []byte
		switch {
		case i == 7: // a value that is not UTF-8, from a file
			p.topic, p.value = topics[1], binary
			args = []string{"publish", "--outbox", dir, "--topic", p.topic, "--key", p.key, "--value-file", binFile}
		case i%4 == 1: // from stdin
			stdin = p.value
		default:
			args = append(args, "--value", string(p.value))
		}
		if i%3 == 0 {
			p.typ, p.source, p.subj, p.contentType = "test.order.created", "/shop/checkout", fmt.Sprintf("order-%d", i), "application/json"
			args = append(args, "--type", p.typ, "--source", p.source, "--subject", p.subj, "--content-type", p.contentType)
		}
		if i%5 == 2 {
			p.headers["tenant"] = "acme"
			p.headers["trace"] = fmt.Sprintf("t=%d=x", i) // '=' in a value is kept
			args = append(args, "--header", "tenant=acme", "--header", "trace="+p.headers["trace"])
		}
		p.before = time.Now()
		r := mustOK(t, relayWith(t, cleanEnv(), stdin, args...))
		p.after = time.Now()
		id := strings.TrimSuffix(r.stdout, "\n")
		if _, err := events.ParseID(id); err != nil || strings.Contains(id, "\n") {
			t.Fatalf("publish printed %q, want the event ID alone", r.stdout)
		}
		if r.stderr != "" {
			t.Fatalf("publish wrote to stderr: %s", r.stderr)
		}
		want[id] = p
	}

	// Before any broker exists: all 50 are pending, and dump shows them as
	// they were given (the binary value as base64).
	recs := dumpJSONOf(t, dir)
	if len(recs) != n {
		t.Fatalf("dump: %d records, want %d", len(recs), n)
	}
	for _, d := range recs {
		p := want[d.ID]
		if p == nil || d.State != "pending" || d.Topic != p.topic || d.Key == nil || *d.Key != p.key || d.Type != p.typ || d.Source != p.source || d.Subject != p.subj {
			t.Fatalf("dump record %+v does not match what was published %+v", d, p)
		}
		if d.Value == nil {
			t.Fatalf("dump record %s has no value", d.ID)
		}
		got := []byte(*d.Value)
		if d.ValueEncoding == "base64" {
			var err error
			if got, err = base64.StdEncoding.DecodeString(*d.Value); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, p.value) || (p.index == 7) != (d.ValueEncoding == "base64") {
			t.Fatalf("dump value of %d: %q (%s), want %q", p.index, got, d.ValueEncoding, p.value)
		}
		if created, err := time.Parse(time.RFC3339Nano, d.Created); err != nil || created.Before(p.before.Add(-time.Second)) || created.After(p.after.Add(time.Second)) {
			t.Fatalf("dump created %q outside the publish (%v..%v)", d.Created, p.before, p.after)
		}
		if len(d.Headers) != len(p.headers) || d.Headers["tenant"] != p.headers["tenant"] {
			t.Fatalf("dump headers %v, want %v", d.Headers, p.headers)
		}
	}

	c := kafkatest.Cluster(t, topics...)
	addr := strings.Join(c.ListenAddrs(), ",")
	r := mustOK(t, cli(t, "run", "--once", "--brokers", addr, "--outbox", dir))
	if !strings.Contains(r.stderr, "relay: stopped") || !strings.Contains(r.stderr, "delivered=50") {
		t.Fatalf("run --once log does not report 50 delivered:\n%s", r.stderr)
	}

	got := kafkatest.ConsumeIdle(t, c.ListenAddrs(), time.Second, 20*time.Second, topics...)
	seen := map[string]bool{}
	last := map[string]int{}
	for _, rec := range got {
		id, _ := relay.HeaderValue(rec, relay.HeaderID)
		p := want[id]
		switch {
		case p == nil:
			t.Fatalf("record with unknown ce_id %q", id)
		case seen[id]:
			t.Fatalf("ce_id %s delivered twice", id)
		}
		seen[id] = true
		k := rec.Topic + "/" + string(rec.Key)
		if prev, ok := last[k]; ok && p.index < prev {
			t.Fatalf("key %s: event %d after %d", k, p.index, prev)
		}
		last[k] = p.index
		if rec.Topic != p.topic || string(rec.Key) != p.key || !bytes.Equal(rec.Value, p.value) {
			t.Fatalf("record %d: topic %s key %q value %q; want %s %q %q", p.index, rec.Topic, rec.Key, rec.Value, p.topic, p.key, p.value)
		}
		checkHeaders(t, rec, id, p)
	}
	if len(seen) != n {
		t.Fatalf("delivered %d distinct events, want %d", len(seen), n)
	}

	st := statsJSONOf(t, dir)
	if st.Pending != 0 || st.Segments != 0 || st.Dead != 0 || st.OldestPending != nil {
		t.Fatalf("stats after the drain: %+v", st)
	}
}

func checkHeaders(t *testing.T, rec *kgo.Record, id string, p *published) {
	t.Helper()
	h := map[string]string{}
	for _, x := range rec.Headers {
		if _, dup := h[x.Key]; dup {
			t.Fatalf("record %d: header %s twice", p.index, x.Key)
		}
		h[x.Key] = string(x.Value)
	}
	wantH := map[string]string{
		relay.HeaderSpecVersion: relay.SpecVersion,
		relay.HeaderID:          id,
		relay.HeaderType:        p.typ,
		relay.HeaderSource:      p.source,
	}
	if p.subj != "" {
		wantH[relay.HeaderSubject] = p.subj
	}
	if p.contentType != "" {
		wantH[relay.HeaderContentType] = p.contentType
	}
	for k, v := range p.headers {
		wantH[k] = v
	}
	for k, v := range wantH {
		if h[k] != v {
			t.Fatalf("record %d: header %s = %q, want %q (all: %v)", p.index, k, h[k], v, h)
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, h[relay.HeaderTime])
	if err != nil || ts.Before(p.before.Add(-time.Second)) || ts.After(p.after.Add(time.Second)) {
		t.Fatalf("record %d: ce_time %q not within the publish (%v..%v)", p.index, h[relay.HeaderTime], p.before, p.after)
	}
	if len(h) != len(wantH)+1 { // + ce_time
		t.Fatalf("record %d: headers %v, want exactly %v and ce_time", p.index, h, wantH)
	}
}

// publishInProcess publishes n events (keys k0..k(keys-1), value = index)
// through the outbox package and closes the outbox, sealing its segment.
// The publishers are not what these tests are about; this is faster than
// n processes.
func publishInProcess(t testing.TB, dir, topic string, n, keys int) map[string]int {
	t.Helper()
	ob, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]int, n)
	const batch = 100
	for i := 0; i < n; i += batch {
		var evs []*events.Event
		for j := i; j < min(n, i+batch); j++ {
			evs = append(evs, &events.Event{Topic: topic, Key: []byte(fmt.Sprintf("k%d", j%keys)), Data: []byte(strconv.Itoa(j))})
		}
		if err := ob.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
		for k, e := range evs {
			ids[e.ID] = i + k
		}
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestRunBrokersFromEnvironment: --brokers falls back to $KAFKA_BROKERS,
// then $KAFKA_BOOTSTRAP_SERVERS; with none it is a usage error, never an
// in-memory broker.
func TestRunBrokersFromEnvironment(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "env")
	addr := strings.Join(c.ListenAddrs(), ",")
	total := 0
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"KAFKA_BROKERS", []string{"KAFKA_BROKERS=" + addr}, nil},
		{"KAFKA_BOOTSTRAP_SERVERS", []string{"KAFKA_BOOTSTRAP_SERVERS=" + addr}, nil},
		{"KAFKA_BROKERS wins", []string{"KAFKA_BROKERS=" + addr, "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"}, nil},
		{"--brokers wins", []string{"KAFKA_BROKERS=127.0.0.1:1"}, []string{"--brokers", addr}},
	} {
		dir := t.TempDir()
		publishInProcess(t, dir, "env", 3, 1)
		total += 3
		args := append([]string{"run", "--once", "--outbox", dir}, tc.args...)
		r := relayWith(t, cleanEnv(tc.env...), nil, args...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d:\n%s", tc.name, r.code, r.stderr)
		}
		if st := statsJSONOf(t, dir); st.Pending != 0 {
			t.Fatalf("%s: %d still pending", tc.name, st.Pending)
		}
	}
	if got := kafkatest.Consume(t, c.ListenAddrs(), total, 10*time.Second, "env"); len(got) != total {
		t.Fatalf("consumed %d, want %d", len(got), total)
	}

	dir := t.TempDir()
	publishInProcess(t, dir, "env", 1, 1)
	r := cli(t, "run", "--once", "--outbox", dir)
	wantExit(t, r, exitUsage, "--brokers", "KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS")
	r = relayWith(t, cleanEnv("KAFKA_BROKERS=not-a-hostport"), nil, "run", "--once", "--outbox", dir)
	wantExit(t, r, exitUsage, "$KAFKA_BROKERS", "not-a-hostport")
	if st := statsJSONOf(t, dir); st.Pending != 1 {
		t.Fatalf("a usage error touched the outbox: %+v", st)
	}
}

// TestRunUntilSIGTERM: a long-running relay drains what separate publish
// processes write while it runs, and exits 0 promptly on SIGTERM.
func TestRunUntilSIGTERM(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "live")
	dir := t.TempDir()
	const drain = 2 * time.Second
	p := start(t, "run", "--outbox", dir, "--brokers", strings.Join(c.ListenAddrs(), ","),
		"--scan-interval", "50ms", "--drain-timeout", drain.String())

	const n = 20
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		r := mustOK(t, cli(t, "publish", "--outbox", dir, "--topic", "live", "--key", fmt.Sprintf("k%d", i%3), "--value", strconv.Itoa(i)))
		ids[strings.TrimSpace(r.stdout)] = true
	}
	got := kafkatest.Consume(t, c.ListenAddrs(), n, 20*time.Second, "live")
	for _, rec := range got {
		id, _ := relay.HeaderValue(rec, relay.HeaderID)
		if !ids[id] {
			t.Fatalf("unexpected record %s", id)
		}
		delete(ids, id)
	}
	if len(ids) != 0 {
		t.Fatalf("%d events not delivered while the relay ran; stderr:\n%s", len(ids), p.stderr)
	}

	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, drain+2*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	noCrash(t, p.stderr.String())
	if !strings.Contains(p.stderr.String(), "delivered=20") {
		t.Fatalf("log does not report 20 delivered:\n%s", p.stderr)
	}
	if st := statsJSONOf(t, dir); st.Pending != 0 || st.Segments != 0 {
		t.Fatalf("after the run: %+v", st)
	}
}

// TestRunSIGTERMWithSilentBroker: the broker takes the connection and never
// answers a produce. SIGTERM still ends the relay within the drain timeout
// (plus slack), exit 0, and the event stays pending for the next run.
func TestRunSIGTERMWithSilentBroker(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "silent")
	var swallowed atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		swallowed.Add(1)
		return nil, nil, true // handled, and never answered
	})
	dir := t.TempDir()
	publishInProcess(t, dir, "silent", 5, 1)
	const drain = time.Second
	p := start(t, "run", "--outbox", dir, "--brokers", strings.Join(c.ListenAddrs(), ","), "--drain-timeout", drain.String())
	deadline := time.Now().Add(10 * time.Second)
	for swallowed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if swallowed.Load() == 0 {
		t.Fatalf("the relay never sent a produce request; stderr:\n%s", p.stderr)
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, drain+2*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	took := time.Since(sent)
	noCrash(t, p.stderr.String())
	if !strings.Contains(p.stderr.String(), "level=WARN") || !strings.Contains(p.stderr.String(), "drain timeout") {
		t.Fatalf("no drain-timeout warning logged:\n%s", p.stderr)
	}
	t.Logf("stopped %v after SIGTERM (drain timeout %v)", took.Round(time.Millisecond), drain)
	if st := statsJSONOf(t, dir); st.Pending != 5 {
		t.Fatalf("after a drain timeout: %d pending, want all 5", st.Pending)
	}
}

// TestRelayKilledMidDrain: SIGKILL the relay while it drains 5,000 events,
// restart it with --once: nothing is lost, and the duplicates (events
// delivered but not yet acknowledged in the outbox when it died) carry
// their original ce_id and are no more than the in-flight window.
func TestRelayKilledMidDrain(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "kill")
	// The broker answers four produce requests, then holds the fifth until
	// the relay is dead: the kill lands mid-drain, with records in flight,
	// however fast or loaded the machine.
	const answered = 4
	var produces atomic.Int64
	hold := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produces.Add(1) > answered {
			select {
			case <-hold:
			case <-time.After(20 * time.Second): // never wedge the cluster
			}
		}
		return nil, nil, false
	})
	dir := t.TempDir()
	const n, window = 5000, 250
	ids := publishInProcess(t, dir, "kill", n, 16)
	addr := strings.Join(c.ListenAddrs(), ",")

	p := start(t, "run", "--outbox", dir, "--brokers", addr, "--max-in-flight", strconv.Itoa(window))
	deadline := time.Now().Add(30 * time.Second)
	for produces.Load() <= answered && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if produces.Load() <= answered {
		t.Fatalf("the relay sent %d produce requests; stderr:\n%s", produces.Load(), p.stderr)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 5*time.Second); code != -int(syscall.SIGKILL) {
		t.Fatalf("relay exit %d, want killed", code)
	}
	close(hold) // the held request is written now: its records were in flight
	var inKafka int64
	for _, pi := range c.PartitionInfos("kill") {
		inKafka += pi.HighWatermark
	}
	st := statsJSONOf(t, dir)
	if inKafka == 0 || inKafka >= n || st.Pending == 0 {
		t.Fatalf("killed with %d records in Kafka and %d of %d pending: not mid-drain", inKafka, st.Pending, n)
	}
	t.Logf("killed with %d records in Kafka and %d of %d events pending", inKafka, st.Pending, n)

	mustOK(t, cli(t, "run", "--once", "--outbox", dir, "--brokers", addr))
	recs := kafkatest.ConsumeIdle(t, c.ListenAddrs(), time.Second, 30*time.Second, "kill")
	count := map[string]int{}
	first := map[string]int{}
	dups := 0
	for _, rec := range recs {
		id, _ := relay.HeaderValue(rec, relay.HeaderID)
		i, ok := ids[id]
		if !ok {
			t.Fatalf("record with unknown ce_id %q", id)
		}
		if string(rec.Value) != strconv.Itoa(i) {
			t.Fatalf("ce_id %s carries value %q, want %d", id, rec.Value, i)
		}
		count[id]++
		if count[id] > 1 {
			dups++
			continue
		}
		if prev, ok := first[string(rec.Key)]; ok && i < prev {
			t.Fatalf("key %s: event %d first seen after %d", rec.Key, i, prev)
		}
		first[string(rec.Key)] = i
	}
	if len(count) != n {
		t.Fatalf("lost %d of %d events", n-len(count), n)
	}
	if dups > window {
		t.Fatalf("%d duplicates, more than the in-flight window %d", dups, window)
	}
	t.Logf("%d records for %d events: %d duplicates (window %d)", len(recs), n, dups, window)
	if st := statsJSONOf(t, dir); st.Pending != 0 || st.Segments != 0 {
		t.Fatalf("after the restart: %+v", st)
	}
}

// TestRunOnceTimeout: with no broker listening, run --once would retry
// forever; --timeout bounds it, exit 1 naming the setting, and the event
// stays pending.
func TestRunOnceTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	publishInProcess(t, dir, "nobody", 1, 1)
	r := cli(t, "run", "--once", "--outbox", dir, "--brokers", "127.0.0.1:1",
		"--timeout", "300ms", "--drain-timeout", "200ms", "--log-level", "error")
	wantExit(t, r, exitError, "--timeout", "1 event still pending")
	if r.took > 5*time.Second {
		t.Fatalf("took %v", r.took)
	}
	if st := statsJSONOf(t, dir); st.Pending != 1 {
		t.Fatalf("after the timeout: %+v", st)
	}
}
