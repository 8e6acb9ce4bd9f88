//go:build integration

package relay

import (
	"context"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

// An event the outbox accepts (under its default MaxEventBytes, 1 MiB) and
// the broker accepts (under message.max.bytes, 1048588 by default) must be
// delivered. franz-go's default ProducerBatchMaxBytes (1000012) refuses it
// in the client with MESSAGE_TOO_LARGE, and the relay parked it (fixed:
// the relay defaults ProducerBatchMaxBytes to Kafka's 1048588).
func TestIntegrationEventUnderPublishLimitDelivered(t *testing.T) {
	k := itSetup(t)
	max := "1048588"
	topic := k.topic(t, "nearmib", 1, map[string]*string{"max.message.bytes": &max})
	ob := openOutbox(t, t.TempDir())
	e := &events.Event{Topic: topic, Key: []byte("k"), Data: make([]byte, 1_010_000)}
	if err := ob.Publish(context.Background(), e); err != nil {
		t.Fatalf("Publish of %d bytes under the default MaxEventBytes: %v", len(e.Data), err)
	}
	log, _ := itLogger(t)
	if err := runOnce(t, itRelay(t, ob, k, log, Once()), 60*time.Second); err != nil {
		t.Fatalf("Once run: %v", err)
	}
	if dead, _ := ob.Own().ReadDead(0, 10); len(dead) != 0 {
		t.Fatalf("a %d-byte event the broker accepts was parked: %s", len(e.Data), dead[0].Error)
	}
	recs := k.consumeAll(t, topic, 30*time.Second)
	if len(recs) != 1 || len(recs[0].Value) != len(e.Data) {
		t.Fatalf("%d records delivered", len(recs))
	}
}
