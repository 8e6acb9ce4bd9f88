//go:build integration

// The tests of the integration suite that restart, SIGKILL or stop the
// broker through scripts/kafka.sh. They run only with
// BOLTRELAY_KAFKA_SCRIPT=1; see integration_test.go for how to run them.
package relay

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// itScript drives the broker through scripts/kafka.sh.
type itScript struct {
	root, path string
	guarded    bool
}

// itBrokerControl returns the script handle, or skips the test when the
// broker may not be touched: only one started by scripts/kafka.sh may be
// restarted, never an external cluster someone pointed KAFKA_BROKERS at.
func itBrokerControl(t *testing.T, k *itKafka) *itScript {
	t.Helper()
	if os.Getenv("BOLTRELAY_KAFKA_SCRIPT") != "1" {
		t.Skip("BOLTRELAY_KAFKA_SCRIPT is not 1: this test restarts, kills or stops the broker, which is allowed only for one started by scripts/kafka.sh; " +
			"the cluster at KAFKA_BROKERS is left alone (set BOLTRELAY_KAFKA_SCRIPT=1 when it is the script's broker)")
	}
	root, err := filepath.Abs("..") // the tests run in relay/
	if err != nil {
		t.Fatal(err)
	}
	s := &itScript{root: root, path: filepath.Join(root, "scripts", "kafka.sh")}
	if _, err := os.Stat(s.path); err != nil {
		t.Fatalf("BOLTRELAY_KAFKA_SCRIPT=1 but the script is not where the repository root should be: %v", err)
	}
	addr := s.run(t, 10*time.Second, "bootstrap")
	if !slices.Contains(k.brokers, addr) {
		t.Fatalf("scripts/kafka.sh controls the broker at %s, which is not in KAFKA_BROKERS=%s: refusing to restart a broker the suite does not talk to",
			addr, strings.Join(k.brokers, ","))
	}
	return s
}

// guard makes sure, at the test's cleanup, that the broker runs again
// whatever happened. Call it after creating the test's topics so that it
// runs before they are deleted.
func (s *itScript) guard(t *testing.T) {
	if s.guarded {
		return
	}
	s.guarded = true
	t.Cleanup(func() { s.run(t, 150*time.Second, "start") })
}

// run runs scripts/kafka.sh with args, bounded by timeout, and returns the
// last line it printed on stdout.
func (s *itScript) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.path}, args...)...)
	cmd.Dir = s.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/kafka.sh %s: %v after %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, time.Since(t0), stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if args[0] != "bootstrap" {
		t.Logf("scripts/kafka.sh %s: %v", strings.Join(args, " "), time.Since(t0).Round(time.Millisecond))
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// healthSeen is what watchHealth saw.
type healthSeen struct {
	unhealthy            bool
	deliveredAtUnhealthy int64 // Delivered at the first unhealthy sample
	errors               []string
}

// watchHealth samples r.Health every 10ms until the returned function is
// called.
func watchHealth(r *Relay) func() healthSeen {
	var (
		mu   sync.Mutex
		seen = healthSeen{deliveredAtUnhealthy: -1}
		last string
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			h := r.Health()
			mu.Lock()
			if !h.Healthy && !seen.unhealthy {
				seen.unhealthy, seen.deliveredAtUnhealthy = true, h.Delivered
			}
			if h.LastError != "" && h.LastError != last && len(seen.errors) < 12 {
				last = h.LastError
				seen.errors = append(seen.errors, h.LastError)
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() healthSeen {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// midDrainThrottle slows the drain to some thousands of events a second
// (a linger per batch and a bounded window) so that the broker goes away
// while records are in flight and thousands still pending, whatever the
// speed of the machine: a drain finished before the broker stops would
// test nothing.
func midDrainThrottle() []Option {
	return []Option{MaxInFlight(200), BatchRecords(100), KafkaOpts(kgo.ProducerLinger(50 * time.Millisecond))}
}

// midDrainBrokerLoss publishes 20,000 small events, starts an embedded
// relay, takes the broker away once some (not all) are delivered, and
// checks that the relay finishes on its own with nothing lost, order per
// key kept and duplicates, if any, carrying their event's ce_id.
func midDrainBrokerLoss(t *testing.T, what string, takeAway func(t *testing.T, s *itScript, r *Relay, total int64), extra ...Option) {
	k := itSetup(t)
	s := itBrokerControl(t, k)
	topic := k.topic(t, what, 3, nil)
	ob := openOutbox(t, t.TempDir())
	const keys, perKey = 20, 1000
	t0 := time.Now()
	pub := itPublish(t, ob, topic, keys, perKey, 500)
	total := int64(len(pub))
	t.Logf("published %d events over %d keys in %v", total, keys, time.Since(t0).Round(time.Millisecond))

	log, logs := itLogger(t)
	r := itRelay(t, ob, k, log, append(append(midDrainThrottle(), DrainTimeout(10*time.Second)), extra...)...)
	s.guard(t)
	stop := start(r)
	defer func() { _, _ = stop() }()
	started := time.Now()
	waitFor(t, "the first 1,000 deliveries", 60*time.Second, func() bool { return r.Health().Delivered >= 1000 })
	seenStop := watchHealth(r)
	before := r.Health().Delivered
	if before >= total {
		t.Fatalf("all %d delivered before the broker could be taken away: slow the drain down", total)
	}
	t.Logf("%d delivered after %v; taking the broker away (%s)", before, time.Since(started).Round(time.Millisecond), what)
	takeAway(t, s, r, total)
	back := time.Now()
	atBack := r.Health().Delivered
	waitFor(t, "the relay to drain everything after the broker returned", 120*time.Second, func() bool { return ob.Own().Pending() == 0 })
	drained := time.Since(back)
	seen := seenStop()
	err, took := stop()
	if err != nil {
		t.Fatalf("Run returned %v (stop took %v)", err, took)
	}
	all, warns := logs.counts()
	h := r.Health()
	t.Logf("relay: %d delivered before, %d when it first found the broker gone, %d when the broker answered again; drained %v after that; health %+v; %d log lines (%d warn/error)",
		before, seen.deliveredAtUnhealthy, atBack, drained.Round(time.Millisecond), h, all, warns)
	t.Logf("errors the relay reported meanwhile: %q", seen.errors)
	if !seen.unhealthy || seen.deliveredAtUnhealthy >= total {
		t.Fatalf("the relay never found the broker gone while events were pending (unhealthy %v at %d of %d delivered): the broker was not taken away mid-drain",
			seen.unhealthy, seen.deliveredAtUnhealthy, total)
	}
	if h.Parked != 0 {
		t.Fatalf("%d events parked across a broker %s", h.Parked, what)
	}
	if dead, err := ob.Own().ReadDead(0, 10); err != nil || len(dead) != 0 {
		t.Fatalf("dead set after a broker %s: %v, %v", what, dead, err)
	}
	if h.Delivered != total {
		t.Errorf("Health().Delivered = %d, published %d", h.Delivered, total)
	}
	recs := k.consumeAll(t, topic, 60*time.Second)
	d := checkDelivery(t, recs, pub)
	t.Logf("DUPLICATES (%s): %d records in Kafka for %d events: %d distinct ce_id, %d duplicates", what, d.records, total, d.distinct, d.duplicates)
}

// 2. A broker restart (SIGTERM, controlled shutdown, start) mid-drain.
func TestIntegrationBrokerRestartMidDrain(t *testing.T) {
	midDrainBrokerLoss(t, "restart", func(t *testing.T, s *itScript, _ *Relay, _ int64) {
		s.run(t, 150*time.Second, "restart")
	})
}

// 3. SIGKILL of the broker process mid-drain, then a start on the same
// data.
func TestIntegrationBrokerKillMidDrain(t *testing.T) {
	midDrainBrokerLoss(t, "kill", func(t *testing.T, s *itScript, r *Relay, total int64) {
		s.run(t, 30*time.Second, "kill")
		if d := r.Health().Delivered; d >= total {
			t.Fatalf("all %d delivered by the time the broker was killed", d)
		}
		time.Sleep(time.Second) // let the relay meet the dead broker
		s.run(t, 150*time.Second, "start")
	})
}

// 6. The broker down when the relay starts: the relay keeps running,
// shows itself unhealthy, and delivers everything soon after the broker
// answers, parking nothing.
func TestIntegrationBrokerDownAtStart(t *testing.T) {
	k := itSetup(t)
	s := itBrokerControl(t, k)
	topic := k.topic(t, "downatstart", 3, nil)
	ob := openOutbox(t, t.TempDir())
	log, logs := itLogger(t)
	r := itRelay(t, ob, k, log, Backoff(100*time.Millisecond, 2*time.Second))
	s.guard(t)
	s.run(t, 60*time.Second, "stop")

	stop := start(r)
	defer func() { _, _ = stop() }()
	watch := watchHealth(r)
	pub := itPublish(t, ob, topic, 10, 10, 1)
	time.Sleep(5 * time.Second)
	h := r.Health()
	if !h.Running || h.Delivered != 0 || h.Parked != 0 {
		t.Fatalf("health with the broker down: %+v", h)
	}
	if p := ob.Own().Pending(); p != int64(len(pub)) {
		t.Fatalf("%d pending with the broker down, published %d", p, len(pub))
	}
	linesDown, _ := logs.counts()

	s.run(t, 150*time.Second, "start")
	answered := time.Now()
	waitFor(t, "everything delivered within 30s of the broker answering", 30*time.Second, func() bool { return ob.Own().Pending() == 0 })
	took := time.Since(answered)
	seen := watch()
	if err, _ := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h = r.Health()
	t.Logf("delivered %v after the broker answered; %d log lines while it was down; errors seen %q; health %+v", took.Round(time.Millisecond), linesDown, seen.errors, h)
	if !seen.unhealthy {
		t.Errorf("the relay never reported itself unhealthy while the broker was down")
	}
	if h.Parked != 0 {
		t.Fatalf("%d parked", h.Parked)
	}
	if dead, err := ob.Own().ReadDead(0, 10); err != nil || len(dead) != 0 {
		t.Fatalf("dead set: %v, %v", dead, err)
	}
	d := checkDelivery(t, k.consumeAll(t, topic, 30*time.Second), pub)
	if d.duplicates != 0 {
		t.Errorf("%d duplicates, though nothing reached the broker before it started", d.duplicates)
	}
}
