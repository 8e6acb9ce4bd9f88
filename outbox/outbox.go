package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// Outbox is one process's handle on an outbox directory: its own live
// segment (unless opened WithoutWriter) and the sealed segments it has
// claimed for draining. Its methods are safe for concurrent use.
type Outbox struct {
	dir string
	cfg cfg
	own *Segment

	closeMu  sync.RWMutex // held shared by each Publish, exclusively by Close
	closed   bool
	closeErr error
	pubs     sync.WaitGroup

	wake chan struct{} // capacity 1: a pending signal is never lost, never piles up

	mu      sync.Mutex
	claimed map[string]*Segment // sealed segments held for draining, by name
	// skip remembers segments Claim need not open again while their file
	// is unchanged: sealed ones holding only parked events, and damaged
	// ones (whose vet would read the whole file at every scan).
	skip map[string]skipped
}

// Open opens the outbox in dir, creating the directory (0700) if missing,
// and creates this process's own segment, which it holds locked until
// Close. It never waits longer than the lock timeout for anything.
func Open(dir string, opts ...Option) (*Outbox, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("outbox: directory is empty")
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	o := &Outbox{dir: dir, cfg: c, wake: make(chan struct{}, 1), claimed: map[string]*Segment{}, skip: map[string]skipped{}}
	if !c.noWriter {
		s, err := createSegment(dir, &o.cfg)
		if err != nil {
			return nil, err
		}
		o.own = s
		c.logger.Debug("outbox: segment created", "segment", s.path)
	}
	return o, nil
}

// Dir returns the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Own returns this process's own live segment, or nil when opened
// WithoutWriter.
func (o *Outbox) Own() *Segment { return o.own }

// Wake returns a channel that receives a value after Publish stored events,
// so an embedded relay needs no polling. One receive may cover several
// publishes.
func (o *Outbox) Wake() <-chan struct{} { return o.wake }

// Publish stores events in this writer's segment and returns nil only once
// they are on disk (the bbolt commit that holds them, fsync included, has
// returned). Either all of the call's events are stored or none is.
// Concurrent calls share commits. Publish applies the Redactor hooks, fills
// in ID, Time, Type and Source when empty (the caller's events are updated,
// so the IDs are visible afterwards) and validates every event first.
//
// ctx bounds only the wait for room under BlockWhenFull; once the events
// are handed to a commit Publish waits for it, since abandoning a commit
// would leave the caller not knowing whether they were stored.
func (o *Outbox) Publish(ctx context.Context, evs ...*events.Event) error {
	o.closeMu.RLock()
	if o.closed {
		o.closeMu.RUnlock()
		return ErrClosed
	}
	o.pubs.Add(1)
	o.closeMu.RUnlock()
	defer o.pubs.Done()
	if o.own == nil {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	recs := make([][]byte, len(evs))
	var total int64
	for i, e := range evs {
		if e == nil {
			return fmt.Errorf("%w: event %d is nil", events.ErrInvalid, i)
		}
		for _, r := range o.cfg.redact {
			r(e)
		}
		e.Prepare(now)
		if err := e.Validate(o.cfg.maxEventBytes); err != nil {
			return fmt.Errorf("outbox: publish: %w", err)
		}
		recs[i] = events.Marshal(e)
		total += int64(len(recs[i]))
	}
	if err := o.reserve(ctx, int64(len(recs)), total); err != nil {
		return err
	}
	put := putEvents(recs)
	err := o.own.write("publish", func(tx *bolt.Tx, d *delta) error {
		if err := put(tx, d); err != nil {
			return err
		}
		d.unreserveN += int64(len(recs))
		d.unreserveBytes += total
		return nil
	})
	if err != nil {
		// Not committed, so the commit released nothing: give the room
		// back here, and to whoever waits for it.
		s := o.own
		s.mu.Lock()
		s.reservedN -= int64(len(recs))
		s.reservedBytes -= total
		close(s.space)
		s.space = make(chan struct{})
		s.mu.Unlock()
		return err
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// reserve claims room for n events of b bytes under the pending limits.
func (o *Outbox) reserve(ctx context.Context, n, b int64) error {
	s := o.own
	for {
		s.mu.Lock()
		fullN := o.cfg.maxPendingEvents > 0 && s.pendingN+s.reservedN+n > o.cfg.maxPendingEvents
		fullB := o.cfg.maxPendingBytes > 0 && s.pendingBytes+s.reservedBytes+b > o.cfg.maxPendingBytes
		if !fullN && !fullB {
			s.reservedN += n
			s.reservedBytes += b
			s.mu.Unlock()
			return nil
		}
		space := s.space
		pn, pb := s.pendingN, s.pendingBytes
		s.mu.Unlock()
		full := fmt.Errorf("%w: %d events / %d bytes pending in %s (limits: %d events, %d bytes)",
			ErrFull, pn, pb, s.name, o.cfg.maxPendingEvents, o.cfg.maxPendingBytes)
		if !o.cfg.blockWhenFull {
			return full
		}
		if (fullN && n > o.cfg.maxPendingEvents) || (fullB && b > o.cfg.maxPendingBytes) {
			return full // could never fit: waiting would wait forever
		}
		select {
		case <-space:
		case <-ctx.Done():
			return fmt.Errorf("%w (waited until %w)", full, ctx.Err())
		}
	}
}

// Close stops accepting publishes, waits for those in progress, closes
// every segment this handle holds and releases their locks. The own
// segment is deleted when it holds nothing (all of it was delivered), so
// short-lived writers leave no empty files behind. Close is idempotent;
// later calls return the first call's result.
//
// Shutdown order matters: a relay using this outbox must have returned
// from Run before Close (see package relay); acknowledgements written after
// Close fail with ErrClosed and the events are re-sent, never lost.
func (o *Outbox) Close() error {
	o.closeMu.Lock()
	if o.closed {
		o.closeMu.Unlock()
		return o.closeErr
	}
	o.closed = true
	o.closeMu.Unlock()

	// 1. Wait for publishes in progress; new ones see closed.
	o.pubs.Wait()
	// 2. Close claimed sealed segments, deleting the drained ones.
	o.mu.Lock()
	claimed := o.claimed
	o.claimed = map[string]*Segment{}
	o.mu.Unlock()
	var errs []error
	for _, s := range claimed {
		errs = append(errs, o.closeSegment(s))
	}
	// 3. Close the own segment, deleting it when empty.
	if o.own != nil {
		errs = append(errs, o.closeSegment(o.own))
	}
	o.closeErr = errors.Join(errs...)
	return o.closeErr
}

// closeSegment closes s, first removing its file if it holds nothing. The
// file is unlinked while its lock is still held, so no other process can
// claim it between the check and the removal.
func (o *Outbox) closeSegment(s *Segment) error {
	settleErr := s.settleAhead()
	s.mu.Lock()
	empty := s.pendingN == 0 && s.deadN == 0 && !s.readOnly
	s.mu.Unlock()
	var rmErr error
	if empty {
		if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
			rmErr = &SegmentError{Op: "remove", Path: s.path, Err: err}
		} else {
			o.cfg.logger.Debug("outbox: drained segment removed", "segment", s.path)
		}
	}
	return errors.Join(settleErr, rmErr, s.close())
}

func (o *Outbox) isClosed() bool {
	o.closeMu.RLock()
	defer o.closeMu.RUnlock()
	return o.closed
}

func (o *Outbox) segPath(name string) string { return filepath.Join(o.dir, name) }
