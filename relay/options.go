package relay

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Option configures New. Options are applied in order; New validates the
// result and names the setting that is wrong.
type Option interface{ apply(*cfg) }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

type cfg struct {
	brokers      []string
	kopts        []kgo.Opt
	drainTimeout time.Duration
	once         bool
	logger       *slog.Logger
	maxInFlight  int
	batchRecords int
	batchBytes   int
	retries      int // -1: franz-go's unbounded default
	scanInterval time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	testHook     func(stage string) // tests only: called at loop stages
}

// Defaults of the options of the same names, for callers that expose them
// (the CLI's flags) without repeating the numbers.
const (
	DefaultDrainTimeout = 5 * time.Second
	DefaultMaxInFlight  = 8192
	DefaultScanInterval = time.Second
)

func defaultCfg() cfg {
	return cfg{
		drainTimeout: DefaultDrainTimeout,
		logger:       slog.New(slog.DiscardHandler),
		maxInFlight:  DefaultMaxInFlight,
		batchRecords: 1024,
		batchBytes:   4 << 20,
		retries:      -1,
		scanInterval: DefaultScanInterval,
		backoffMin:   100 * time.Millisecond,
		backoffMax:   10 * time.Second,
	}
}

func (c *cfg) validate() error {
	switch {
	case len(c.brokers) == 0:
		return fmt.Errorf("relay: Brokers is empty: give at least one host:port")
	case c.drainTimeout <= 0:
		return fmt.Errorf("relay: DrainTimeout %v must be positive (shutdown is always bounded)", c.drainTimeout)
	case c.maxInFlight < 1:
		return fmt.Errorf("relay: MaxInFlight %d must be at least 1", c.maxInFlight)
	case c.batchRecords < 1:
		return fmt.Errorf("relay: BatchRecords %d must be at least 1", c.batchRecords)
	case c.batchBytes < 1:
		return fmt.Errorf("relay: BatchBytes %d must be at least 1", c.batchBytes)
	case c.retries < -1:
		return fmt.Errorf("relay: Retries %d must be -1 (unbounded) or more", c.retries)
	case c.scanInterval <= 0:
		return fmt.Errorf("relay: ScanInterval %v must be positive", c.scanInterval)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("relay: Backoff %v..%v must be positive and min <= max", c.backoffMin, c.backoffMax)
	}
	for _, b := range c.brokers {
		if b == "" {
			return fmt.Errorf("relay: Brokers holds an empty address")
		}
	}
	return nil
}

// Brokers sets the seed brokers (host:port). Required. Corresponds to
// Kafka's bootstrap.servers.
func Brokers(addrs ...string) Option {
	return optFunc(func(c *cfg) { c.brokers = append(c.brokers, addrs...) })
}

// KafkaOpts passes extra franz-go options to the client the relay creates
// (TLS, SASL, linger, compression...). They are applied after the relay's
// own, so they win; the relay still owns and closes the client.
func KafkaOpts(opts ...kgo.Opt) Option {
	return optFunc(func(c *cfg) { c.kopts = append(c.kopts, opts...) })
}

// DrainTimeout bounds how long Run waits, once its context ends, for
// records already handed to Kafka to be acknowledged. What is not
// acknowledged by then stays pending and is sent again by a later run.
// Default 5s.
func DrainTimeout(d time.Duration) Option { return optFunc(func(c *cfg) { c.drainTimeout = d }) }

// Once makes Run return nil as soon as nothing drainable is pending:
// everything it could read was acknowledged or parked. Events for topics
// in the waiting class (missing, not authorised) are tried once, and Run
// then returns an error wrapping ErrStillPending naming them. Segments
// held by live writers, and damaged ones, are skipped and reported by
// Skipped. Default off.
func Once() Option { return optFunc(func(c *cfg) { c.once = true }) }

// Logger sets the structured logger. Default: discard (a library stays
// silent unless asked).
func Logger(l *slog.Logger) Option { return optFunc(func(c *cfg) { c.logger = l }) }

// MaxInFlight bounds the records handed to Kafka and not yet acknowledged.
// It is also capped by franz-go's MaxBufferedRecords, so the relay never
// blocks inside Produce. Default 8192.
func MaxInFlight(n int) Option { return optFunc(func(c *cfg) { c.maxInFlight = n }) }

// BatchRecords bounds the records read from a segment per read
// transaction. Default 1024.
func BatchRecords(n int) Option { return optFunc(func(c *cfg) { c.batchRecords = n }) }

// BatchBytes bounds the stored bytes read per read transaction. Default
// 4 MiB.
func BatchBytes(n int) Option { return optFunc(func(c *cfg) { c.batchBytes = n }) }

// Retries sets how often franz-go retries a record internally before it
// reports a failure to the relay (kgo.RecordRetries, and
// kgo.UnknownTopicRetries for missing topics). 0 still means one attempt.
// Whatever the setting, a failure the relay classifies as transient or
// waiting keeps the event pending and the relay tries again at backoff
// pace: no setting makes it drop an event. Default -1: franz-go's own
// defaults (unbounded retries; 4 for unknown topics).
func Retries(n int) Option { return optFunc(func(c *cfg) { c.retries = n }) }

// ScanInterval is how often the relay looks in the outbox directory for
// sealed segments left by other writers. Default 1s.
func ScanInterval(d time.Duration) Option { return optFunc(func(c *cfg) { c.scanInterval = d }) }

// Backoff sets the capped exponential backoff (with jitter) between
// retries after transient failures and of waiting topics. Default
// 100ms..10s.
func Backoff(min, max time.Duration) Option {
	return optFunc(func(c *cfg) { c.backoffMin, c.backoffMax = min, max })
}

// testHook is for this package's tests: fn is called at named stages of
// the loop (to inject a panic, or to observe).
func testHook(fn func(stage string)) Option { return optFunc(func(c *cfg) { c.testHook = fn }) }
