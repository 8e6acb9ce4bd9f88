// Package kafkatest holds test helpers shared by boltrelay's packages: an
// in-process kfake cluster (real Kafka wire protocol) and a consumer that
// reads back what the relay wrote.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster starts a kfake cluster on 127.0.0.1 with the given topics (3
// partitions each, no auto-creation, like the Apache Kafka the integration
// suite runs) and closes it at test cleanup.
func Cluster(t testing.TB, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Consume reads topics from the start until it has n records or timeout
// passes, and returns what it got.
func Consume(t testing.TB, brokers []string, n int, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	cl := newConsumer(t, brokers, topics)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// ConsumeIdle reads topics from the start until no record arrived for
// quiet, or timeout passed: for checking that nothing more (no
// duplicate) was written.
func ConsumeIdle(t testing.TB, brokers []string, quiet, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	cl := newConsumer(t, brokers, topics)
	defer cl.Close()
	end := time.Now().Add(timeout)
	last := time.Now()
	var out []*kgo.Record
	for time.Now().Before(end) && time.Since(last) < quiet {
		ctx, cancel := context.WithTimeout(context.Background(), quiet/4)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); last = time.Now() })
	}
	return out
}

// newConsumer is a group-less consumer of topics from their start.
func newConsumer(t testing.TB, brokers, topics []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	return cl
}
