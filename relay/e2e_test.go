package relay

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
)

func TestEndToEndOnce(t *testing.T) {
	c := kafkatest.Cluster(t, "orders")
	dir := t.TempDir()
	ob, err := outbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	ids := map[string]int{}
	for i := 0; i < n; i++ {
		e := &events.Event{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", i%7)), Data: []byte(fmt.Sprintf("%d", i)), Subject: "s"}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids[e.ID] = i
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	drain, err := outbox.Open(dir, outbox.WithoutWriter())
	if err != nil {
		t.Fatal(err)
	}
	defer drain.Close()
	r, err := New(drain, Brokers(c.ListenAddrs()...), Once())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Consume(t, c.ListenAddrs(), n, 10*time.Second, "orders")
	seen := map[string]bool{}
	lastPerKey := map[string]int{}
	for _, rec := range recs {
		id, _ := HeaderValue(rec, HeaderID)
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
		i, ok := ids[id]
		if !ok {
			t.Fatalf("unknown id %s", id)
		}
		if prev, ok := lastPerKey[string(rec.Key)]; ok && prev > i {
			t.Fatalf("key %s: %d after %d", rec.Key, i, prev)
		}
		lastPerKey[string(rec.Key)] = i
		checkCEHeaders(t, rec, id, fmt.Sprint(i))
	}
	if len(seen) != n {
		t.Fatalf("delivered %d of %d", len(seen), n)
	}
	st, err := drain.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Segments != 0 {
		t.Fatalf("after drain: %+v", st)
	}
}

func TestEmbeddedRunCancel(t *testing.T) {
	c := kafkatest.Cluster(t, "orders")
	ob, err := outbox.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	r, err := New(ob, Brokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	for i := 0; i < 100; i++ {
		if err := ob.Publish(context.Background(), &events.Event{Topic: "orders", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Health().Delivered < 100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if d := r.Health().Delivered; d != 100 {
		t.Fatalf("delivered %d", d)
	}
}

func checkCEHeaders(t *testing.T, rec *kgo.Record, id, value string) {
	t.Helper()
	want := map[string]string{HeaderSpecVersion: "1.0", HeaderID: id, HeaderType: events.DefaultType, HeaderSource: events.DefaultSource, HeaderSubject: "s"}
	for k, v := range want {
		if got, ok := HeaderValue(rec, k); !ok || got != v {
			t.Fatalf("header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	ts, _ := HeaderValue(rec, HeaderTime)
	if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(tm) > time.Minute {
		t.Fatalf("ce_time %q: %v", ts, err)
	}
	if string(rec.Value) != value {
		t.Fatalf("value %q, want %q", rec.Value, value)
	}
}
