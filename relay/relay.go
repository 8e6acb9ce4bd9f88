package relay

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/outbox"
)

// Relay drains an outbox to Kafka. Create it with New and call Run.
type Relay struct {
	ob  *outbox.Outbox
	cfg cfg

	running atomic.Bool

	mu      sync.Mutex
	health  Health
	skipped []outbox.SegmentInfo
}

// Health is a snapshot of the relay's state, for health endpoints and
// stats.
type Health struct {
	Running   bool
	Healthy   bool              // false while the brokers are unreachable or the loop is restarting
	LastError string            // the most recent produce or connection failure
	ErrorAt   time.Time         // when it happened
	Delivered int64             // events acknowledged by Kafka (and deleted) in this process
	Parked    int64             // events parked in this process
	InFlight  int               // records handed to Kafka and not yet acknowledged
	Waiting   map[string]string // topic -> error, topics whose events wait
	Panics    int               // loop panics recovered (each one restarted the loop)
}

// New returns a relay for ob. The relay does not own ob: the caller closes
// it after Run has returned.
func New(ob *outbox.Outbox, opts ...Option) (*Relay, error) {
	if ob == nil {
		return nil, errors.New("relay: outbox is nil")
	}
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &Relay{ob: ob, cfg: c}, nil
}

// Health returns a snapshot of the relay's state.
func (r *Relay) Health() Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.health
	h.Waiting = make(map[string]string, len(r.health.Waiting))
	for k, v := range r.health.Waiting {
		h.Waiting[k] = v
	}
	return h
}

// Skipped returns the segments the last Run did not drain, as of its end:
// those another process held (a live writer, another relay) and the
// damaged ones, each with its state and error.
func (r *Relay) Skipped() []outbox.SegmentInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outbox.SegmentInfo(nil), r.skipped...)
}

func (r *Relay) setHealth(fn func(h *Health)) {
	r.mu.Lock()
	fn(&r.health)
	r.mu.Unlock()
}

// Run drains the outbox until ctx ends (or, with Once, until nothing
// drainable is pending) and returns only after its Kafka client and every
// goroutine it started are gone. When ctx ends it stops reading, waits up
// to the drain timeout for records in flight, records what was
// acknowledged, aborts the rest (which stays pending) and closes the
// client; this is bounded even when a broker accepts connections and never
// answers. It returns nil after a clean stop, an error wrapping
// ErrDrainTimeout when records were left in flight, and any error that
// made it unable to go on (the outbox was closed under it).
//
// A panic inside the loop is recovered, reported in Health and the log,
// and the loop restarted with a new client after a backoff; Run does not
// die quietly while the application keeps publishing.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer r.running.Store(false)
	r.setHealth(func(h *Health) { h.Running = true; h.Healthy = true })
	defer r.setHealth(func(h *Health) { h.Running = false; h.InFlight = 0 })

	bo := r.newBackoff()
	for {
		err, panicked := r.runOnce(ctx)
		if !panicked {
			return err
		}
		d := bo.NextBackOff()
		r.cfg.logger.Error("relay: loop panicked; restarting", "error", err, "after", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (r *Relay) newBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(r.cfg.backoffMin),
		backoff.WithMaxInterval(r.cfg.backoffMax),
		backoff.WithMaxElapsedTime(0), // never give up: the relay retries until stopped
	)
	b.Reset()
	return b
}

// runOnce is one life of the loop with its own client. A panic is turned
// into an error (panicked true) after the client was closed.
func (r *Relay) runOnce(ctx context.Context) (err error, panicked bool) {
	client, err := kgo.NewClient(r.kgoOpts()...)
	if err != nil {
		return fmt.Errorf("relay: create Kafka client: %w", err), false
	}
	l := newLoop(r, client)
	defer func() {
		if p := recover(); p != nil {
			r.setHealth(func(h *Health) { h.Panics++; h.Healthy = false; h.LastError = fmt.Sprint(p); h.ErrorAt = time.Now() })
			l.abort()
			l.stopAcker()
			err = fmt.Errorf("relay: panic: %v\n%s", p, debug.Stack())
			panicked = true
		}
	}()
	return l.run(ctx), false
}

func (r *Relay) kgoOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		// Kafka's own default message.max.bytes: franz-go's smaller
		// default (1000012) would refuse, inside the client, events the
		// outbox accepted and the broker would take.
		kgo.ProducerBatchMaxBytes(1048588),
		// A topic created while its events wait is seen within a second,
		// not franz-go's default five.
		kgo.MetadataMinAge(time.Second),
		kgo.ClientID("boltrelay"),
		kgo.WithHooks(&connHook{r: r}),
	}
	if r.cfg.retries >= 0 {
		opts = append(opts, kgo.RecordRetries(r.cfg.retries), kgo.UnknownTopicRetries(r.cfg.retries))
	}
	return append(opts, r.cfg.kopts...)
}
