//go:build integration

package relay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
)

func TestIntegrationScratchNearMiBFixed(t *testing.T) {
	k := itSetup(t)
	topic := k.topic(t, "nearmib", 1, nil)
	ob := openOutbox(t, t.TempDir())
	for _, n := range []int{1_010_000, 1_040_000} {
		e := &events.Event{Topic: topic, Key: []byte("k"), Data: make([]byte, n)}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Logf("publish %d: %v", n, err)
		}
	}
	log, _ := itLogger(t)
	err := runOnce(t, itRelay(t, ob, k, log, Once(), KafkaOpts(kgo.ProducerBatchMaxBytes(1048588))), 60*time.Second)
	t.Logf("Once: %v", err)
	recs := k.consumeAll(t, topic, 20*time.Second)
	for _, r := range recs {
		t.Logf("delivered value of %d bytes", len(r.Value))
	}
	dead, _ := ob.Own().ReadDead(0, 100)
	for _, d := range dead {
		t.Logf("  parked %d bytes (size %d): %s", len(d.Event.Data), d.Size, d.Error)
	}
}

func TestIntegrationScratchRestartRetries0(t *testing.T) {
	midDrainBrokerLoss(t, "restart", func(t *testing.T, s *itScript, _ *Relay, _ int64) {
		s.run(t, 150*time.Second, "restart")
	}, Retries(0))
}
func TestIntegrationScratchKillRetries3(t *testing.T) {
	midDrainBrokerLoss(t, "kill", func(t *testing.T, s *itScript, r *Relay, total int64) {
		s.run(t, 30*time.Second, "kill")
		time.Sleep(time.Second)
		s.run(t, 150*time.Second, "start")
	}, Retries(3))
}
