package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
)

// BenchmarkDrain measures the relay moving a backlog of b.N events from a
// sealed segment to an in-process broker: ns/op is per event. The backlog
// is built outside the timer.
func BenchmarkDrain(b *testing.B) {
	c := kafkatest.Cluster(b, "bench")
	dir := b.TempDir()
	ob, err := outbox.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	evs := make([]*events.Event, 0, batch)
	for i := 0; i < b.N; i++ {
		evs = append(evs, &events.Event{Topic: "bench", Key: []byte(fmt.Sprintf("k%d", i%1000)), Data: make([]byte, 256)})
		if len(evs) == batch || i == b.N-1 {
			if err := ob.Publish(context.Background(), evs...); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	if err := ob.Close(); err != nil {
		b.Fatal(err)
	}
	drain, err := outbox.Open(dir, outbox.WithoutWriter())
	if err != nil {
		b.Fatal(err)
	}
	defer drain.Close()
	r, err := New(drain, Brokers(c.ListenAddrs()...), Once())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	if err := r.Run(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if d := r.Health().Delivered; d != int64(b.N) {
		b.Fatalf("delivered %d of %d", d, b.N)
	}
}

func BenchmarkToRecord(b *testing.B) {
	e := &events.Event{ID: events.NewID(), Type: "t", Source: "s", Subject: "x", Time: time.Now(), Topic: "bench",
		Key: []byte("key"), ContentType: "application/json", Data: make([]byte, 256), CorrelationID: "c"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = ToRecord(e)
	}
}
