package outbox

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

// Option configures Open. Options are applied in order; Open validates the
// result and names the setting that is wrong.
type Option interface{ apply(*cfg) }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

type cfg struct {
	lockTimeout      time.Duration
	maxEventBytes    int
	maxPendingBytes  int64
	maxPendingEvents int64
	blockWhenFull    bool
	noWriter         bool
	redact           []func(*events.Event)
	logger           *slog.Logger
	noSync           bool
}

// DefaultMaxEventBytes is MaxEventBytes' default: 1 MiB, the default of
// Kafka's max.message.bytes.
const DefaultMaxEventBytes = 1 << 20

func defaultCfg() cfg {
	return cfg{
		lockTimeout:   time.Second,
		maxEventBytes: DefaultMaxEventBytes,
		logger:        slog.New(slog.DiscardHandler),
	}
}

func (c *cfg) validate() error {
	switch {
	case c.lockTimeout <= 0:
		return fmt.Errorf("outbox: LockTimeout %v must be positive (a lock wait always ends)", c.lockTimeout)
	case c.maxEventBytes < 0:
		return fmt.Errorf("outbox: MaxEventBytes %d must not be negative", c.maxEventBytes)
	case c.maxPendingBytes < 0:
		return fmt.Errorf("outbox: MaxPendingBytes %d must not be negative", c.maxPendingBytes)
	case c.maxPendingEvents < 0:
		return fmt.Errorf("outbox: MaxPendingEvents %d must not be negative", c.maxPendingEvents)
	}
	return nil
}

// LockTimeout bounds how long Open and the inspection functions wait for a
// segment's file lock before failing with ErrLocked. Default 1s.
func LockTimeout(d time.Duration) Option { return optFunc(func(c *cfg) { c.lockTimeout = d }) }

// MaxEventBytes refuses, at Publish, any event whose stored encoding is
// larger than n bytes (events.ErrTooLarge); 0 disables the check. Default
// 1 MiB, the default of Kafka's max.message.bytes: an event larger than the
// broker accepts would only be parked later.
func MaxEventBytes(n int) Option { return optFunc(func(c *cfg) { c.maxEventBytes = n }) }

// MaxPendingBytes bounds the encoded bytes pending in this writer's own
// segment; a Publish that would exceed it fails with ErrFull (or waits, see
// BlockWhenFull). 0, the default, means unbounded.
func MaxPendingBytes(n int64) Option { return optFunc(func(c *cfg) { c.maxPendingBytes = n }) }

// MaxPendingEvents bounds the events pending in this writer's own segment,
// as MaxPendingBytes does bytes. 0, the default, means unbounded.
func MaxPendingEvents(n int64) Option { return optFunc(func(c *cfg) { c.maxPendingEvents = n }) }

// BlockWhenFull makes a Publish that finds the outbox full wait until the
// relay has acknowledged enough events or its context ends, instead of
// returning ErrFull at once. Default off.
func BlockWhenFull() Option { return optFunc(func(c *cfg) { c.blockWhenFull = true }) }

// WithoutWriter opens the outbox for draining only: no segment of its own is
// created, and Publish returns ErrReadOnly. This is how a standalone relay
// opens a directory that other processes write. Default off.
func WithoutWriter() Option { return optFunc(func(c *cfg) { c.noWriter = true }) }

// Redactor adds a hook that Publish applies to every event before it is
// validated and written, so that nothing it removes ever reaches the disk.
// Hooks run in the order given. Default none (the agent event kinds redact
// their user_request field themselves).
func Redactor(fn func(*events.Event)) Option {
	return optFunc(func(c *cfg) { c.redact = append(c.redact, fn) })
}

// Logger sets the logger for segment lifecycle events (claims, deletions,
// damaged files). Default: discard.
func Logger(l *slog.Logger) Option { return optFunc(func(c *cfg) { c.logger = l }) }

// UnsafeNoSync turns off fsync on commit. Publish then no longer survives a
// machine crash; only for benchmarks that measure everything but the disk.
func UnsafeNoSync() Option { return optFunc(func(c *cfg) { c.noSync = true }) }
