package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketPending  = []byte("pending")
	bucketDead     = []byte("dead")
	bucketAttempts = []byte("attempts")
	bucketMeta     = []byte("meta")

	keyVersion      = []byte("version")
	keyPendingN     = []byte("pending_n")
	keyPendingBytes = []byte("pending_bytes")
	keyDeadN        = []byte("dead_n")
	keyCreated      = []byte("created")
	keyAckedThrough = []byte("acked_through")
)

// formatVersion is the segment format this code writes and reads. A segment
// with another version is reported as damaged rather than misread.
const formatVersion = 1

// minSegmentSize is the size of the smallest valid bbolt file (two meta
// pages, a freelist and a leaf, at the smallest page size bbolt writes).
// Anything shorter was cut off; bbolt would silently re-initialise an empty
// file, so it must never be handed one.
const minSegmentSize = 4 * 1024

// Segment is one bbolt file of an outbox, held open (and locked) by this
// process: either the writer's own live segment or a sealed one claimed for
// draining. Its methods are safe for concurrent use.
type Segment struct {
	name, path string
	db         *bolt.DB
	own        bool
	readOnly   bool
	gc         committer

	mu                            sync.Mutex
	pendingN, pendingBytes, deadN int64
	reservedN, reservedBytes      int64
	closed                        bool
	writes                        sync.WaitGroup // writes in progress; close waits for them
	readSinceDrop                 atomic.Int64   // bytes read since the last dropPages
	// A sealed segment is acknowledged by watermark: every pending key at
	// or below wm is delivered (its file is deleted whole once drained, so
	// the keys need not be). ackedAhead holds acknowledged sequences above
	// wm, waiting for the gap below them to close (acks from different
	// partitions arrive out of order); a crash forgets them and they are
	// sent again, with their ce_id.
	wm         uint64
	ackedAhead map[uint64]bool
	space      chan struct{} // closed and replaced when acks free space
}

// Name returns the segment's file name (without directory).
func (s *Segment) Name() string { return s.name }

// Path returns the segment's file path.
func (s *Segment) Path() string { return s.path }

// Live reports whether this is the writer's own segment, still receiving
// publishes. A sealed segment receives none.
func (s *Segment) Live() bool { return s.own }

// Pending returns the number of events pending in the segment.
func (s *Segment) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingN
}

// Dead returns the number of events parked in the segment.
func (s *Segment) Dead() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadN
}

// boltOptions are the bbolt options of every segment open. The freelist is
// bbolt's hashmap type and is synced on every commit (bbolt's default):
// with it unsynced every later open walks all pages of the file, which
// `relay bench` measured costing the relay the whole file in resident
// memory for no gain in commit time (docs/benchmarks.md).
func boltOptions(c *cfg, timeout time.Duration, readOnly bool) *bolt.Options {
	return &bolt.Options{Timeout: timeout, ReadOnly: readOnly, NoSync: c.noSync, FreelistType: bolt.FreelistMapType}
}

// createSegment makes this process's own segment: initialised under a
// temporary name, then renamed into place and the directory synced, so a
// process killed at any point leaves either no segment or a valid empty one.
func createSegment(dir string, c *cfg) (*Segment, error) {
	now := time.Now()
	name := newSegmentName(now)
	tmp := filepath.Join(dir, tmpPrefix+name)
	path := filepath.Join(dir, name)
	// The file is synced once, before the rename, rather than at every
	// step of its initialisation: until the rename nothing refers to it,
	// so a crash before then loses only a temporary file. This saves two
	// of the syncs a short-lived `relay publish` pays.
	opts := boltOptions(c, c.lockTimeout, false)
	opts.NoSync, opts.NoGrowSync = true, true
	db, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("outbox: create segment in %s: %w", dir, err)
	}
	fail := func(err error) (*Segment, error) {
		_ = db.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("outbox: create segment in %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketDead, bucketAttempts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if err := m.Put(keyVersion, u64(formatVersion)); err != nil {
			return err
		}
		return m.Put(keyCreated, u64(uint64(now.UnixNano())))
	})
	if err != nil {
		return fail(err)
	}
	if !c.noSync {
		if err := db.Sync(); err != nil {
			return fail(err)
		}
	}
	db.NoSync, db.NoGrowSync = c.noSync, false
	// bbolt keeps the descriptor (and its lock) across the rename; the
	// path it remembers is only used for messages.
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if !c.noSync {
		if err := syncDir(dir); err != nil {
			_ = db.Close()
			_ = os.Remove(path)
			return nil, fmt.Errorf("outbox: create segment in %s: sync directory: %w", dir, err)
		}
	}
	s := &Segment{name: name, path: path, db: db, own: true, space: make(chan struct{})}
	s.gc.seg = s
	return s, nil
}

// openSegment opens an existing segment file, waiting at most timeout for
// its lock. readOnly takes a shared lock and never writes to the file.
func openSegment(path string, c *cfg, timeout time.Duration, readOnly bool) (s *Segment, err error) {
	segErr := func(e error) error { return &SegmentError{Op: "open", Path: path, Err: e} }
	fi, err := os.Stat(path)
	if err != nil {
		return nil, segErr(err)
	}
	if fi.Size() < minSegmentSize {
		return nil, segErr(fmt.Errorf("%w: %d bytes is shorter than any bbolt file", ErrDamaged, fi.Size()))
	}
	if !readOnly {
		if err := vetSegment(path, c, timeout); err != nil {
			return nil, err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, segErr(fmt.Errorf("%w: %v", ErrDamaged, r))
		}
	}()
	db, err := bolt.Open(path, 0o600, boltOptions(c, timeout, readOnly))
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, segErr(fmt.Errorf("%w (waited %v)", ErrLocked, timeout))
		case errors.Is(err, os.ErrPermission):
			return nil, segErr(err)
		default:
			return nil, segErr(fmt.Errorf("%w: %v", ErrDamaged, err))
		}
	}
	s = &Segment{name: filepath.Base(path), path: path, db: db, readOnly: readOnly, space: make(chan struct{})}
	s.gc.seg = s
	if err := s.loadCounters(fi.Size()); err != nil {
		_ = db.Close()
		return nil, segErr(err)
	}
	return s, nil
}

func (s *Segment) loadCounters(fileSize int64) error {
	return s.view(func(tx *bolt.Tx) error {
		if need := tx.Size(); need > fileSize {
			// Truncated: bbolt would read the missing pages from beyond
			// its map of the file.
			return fmt.Errorf("%w: file is %d bytes, its pages reach %d (truncated)", ErrDamaged, fileSize, need)
		}
		m := tx.Bucket(bucketMeta)
		if m == nil || tx.Bucket(bucketPending) == nil || tx.Bucket(bucketDead) == nil || tx.Bucket(bucketAttempts) == nil {
			return fmt.Errorf("%w: not a boltrelay segment (buckets missing)", ErrDamaged)
		}
		if v := getU64(m.Get(keyVersion)); v != formatVersion {
			return fmt.Errorf("%w: segment format version %d, this build reads %d", ErrDamaged, v, formatVersion)
		}
		s.pendingN = int64(getU64(m.Get(keyPendingN)))
		s.pendingBytes = int64(getU64(m.Get(keyPendingBytes)))
		s.deadN = int64(getU64(m.Get(keyDeadN)))
		s.wm = getU64(m.Get(keyAckedThrough))
		return nil
	})
}

// view and update run bbolt transactions, turning a panic from a damaged
// page into ErrDamaged naming the file: a bad segment must not take the
// process (or the other segments) down with it. A read through a damaged
// page pointer can land outside the file's map; view makes that fault a
// panic too, rather than a crash.
func (s *Segment) view(fn func(*bolt.Tx) error) (err error) {
	defer s.recoverDamage("read", &err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.db.View(fn)
}

// vetSegment reads every page of a segment, read-only, before it is opened
// for writing, so that a damaged segment is reported (ErrDamaged, naming
// it) and skipped before anything is sent from it, rather than failing a
// relay half way through its drain. It also covers files whose freelist
// was not synced: their read-write open rebuilds the freelist by walking
// every page in a goroutine of bbolt's own, where a panic on a damaged
// page cannot be recovered; the same walk here turns it into ErrDamaged.
func vetSegment(path string, c *cfg, timeout time.Duration) error {
	s, err := openSegment(path, c, timeout, true)
	if err != nil {
		return err
	}
	err = s.view(func(tx *bolt.Tx) error {
		// Drop the walked pages as it goes: a vet must not cost resident
		// memory of the file's size (see dropPages).
		walked := 0
		drop := func(n int) {
			if walked += n; walked >= dropEvery {
				walked = 0
				dropPages(tx, s.db)
			}
		}
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b, drop) })
	})
	_ = s.close()
	var se *SegmentError
	if err != nil && !errors.As(err, &se) {
		err = &SegmentError{Op: "open", Path: path, Err: err}
	}
	return err
}

func walkBucket(b *bolt.Bucket, drop func(int)) error {
	var prev []byte
	return b.ForEach(func(k, v []byte) error {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("%w: keys out of order", ErrDamaged)
		}
		prev = k
		drop(len(k) + len(v))
		if v == nil {
			if child := b.Bucket(k); child != nil {
				return walkBucket(child, drop)
			}
		}
		return nil
	})
}

func (s *Segment) update(fn func(*bolt.Tx) error) (err error) {
	if s.readOnly {
		return &SegmentError{Op: "write", Path: s.path, Err: errors.New("opened read-only")}
	}
	defer s.recoverDamage("write", &err)
	return s.db.Update(fn)
}

func (s *Segment) recoverDamage(op string, err *error) {
	if r := recover(); r != nil {
		*err = &SegmentError{Op: op, Path: s.path, Err: fmt.Errorf("%w: %v", ErrDamaged, r)}
	}
}

func (s *Segment) writeCounters(tx *bolt.Tx, d delta) error {
	s.mu.Lock()
	n, b, dn := s.pendingN+d.pendingN, s.pendingBytes+d.pendingBytes, s.deadN+d.deadN
	s.mu.Unlock()
	m := tx.Bucket(bucketMeta)
	if err := m.Put(keyPendingN, u64(uint64(n))); err != nil {
		return err
	}
	if err := m.Put(keyPendingBytes, u64(uint64(b))); err != nil {
		return err
	}
	return m.Put(keyDeadN, u64(uint64(dn)))
}

func (s *Segment) applyDelta(d delta) {
	s.mu.Lock()
	s.pendingN += d.pendingN
	s.pendingBytes += d.pendingBytes
	s.deadN += d.deadN
	s.reservedN -= d.unreserveN
	s.reservedBytes -= d.unreserveBytes
	if len(d.ackAdd) > 0 || len(d.ackCover) > 0 || d.wm != 0 {
		if s.ackedAhead == nil {
			s.ackedAhead = map[uint64]bool{}
		}
		for _, q := range d.ackAdd {
			s.ackedAhead[q] = true
		}
		for _, q := range d.ackCover {
			delete(s.ackedAhead, q)
		}
		if d.wm > s.wm {
			s.wm = d.wm
		}
	}
	if d.pendingN < 0 || d.pendingBytes < 0 {
		close(s.space) // wake publishers waiting for room
		s.space = make(chan struct{})
	}
	s.mu.Unlock()
}

// write runs fn in a group commit unless the segment is closed.
func (s *Segment) write(op string, fn func(tx *bolt.Tx, d *delta) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return &SegmentError{Op: op, Path: s.path, Err: ErrClosed}
	}
	s.writes.Add(1)
	s.mu.Unlock()
	defer s.writes.Done()
	if err := s.gc.do(fn); err != nil {
		var se *SegmentError
		if errors.As(err, &se) {
			return err
		}
		return &SegmentError{Op: op, Path: s.path, Err: err}
	}
	return nil
}

// settleAhead makes the acknowledgements held above a sealed segment's
// watermark durable before the segment is closed, by deleting those keys
// (the few above a gap, not the drained prefix): otherwise a clean stop
// with a gap open (a waiting topic's record below them) forgets them and
// every later run sends them again. A crash still forgets them.
func (s *Segment) settleAhead() error {
	s.mu.Lock()
	need := !s.own && !s.readOnly && !s.closed && len(s.ackedAhead) > 0 && s.pendingN > 0
	s.mu.Unlock()
	if !need {
		return nil
	}
	return s.write("ack", func(tx *bolt.Tx, d *delta) error {
		s.mu.Lock()
		seqs := make([]uint64, 0, len(s.ackedAhead))
		for q := range s.ackedAhead {
			seqs = append(seqs, q)
		}
		s.mu.Unlock()
		p, att := tx.Bucket(bucketPending), tx.Bucket(bucketAttempts)
		for _, q := range seqs {
			d.ackCover = append(d.ackCover, q)
			k := seqKey(q)
			v := p.Get(k)
			if v == nil {
				continue // parked before its ack was recorded
			}
			d.pendingN--
			d.pendingBytes -= int64(len(v))
			if err := p.Delete(k); err != nil {
				return err
			}
			if err := att.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// close refuses new writes, waits for those in progress, then closes the
// bbolt file, releasing its lock.
func (s *Segment) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.writes.Wait()
	if err := s.db.Close(); err != nil {
		return &SegmentError{Op: "close", Path: s.path, Err: err}
	}
	return nil
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// pendingFrom returns the first sequence a reader should look at for
// records after "after": past the acknowledgement watermark.
func (s *Segment) pendingFrom(after uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(after, s.wm) + 1
}

// ackedBeyond reports whether seq was acknowledged above the watermark.
func (s *Segment) ackedBeyond(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackedAhead[seq]
}
