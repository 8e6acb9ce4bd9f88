package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// Record is one stored event as read back from a segment.
type Record struct {
	Segment string // segment file name
	Seq     uint64 // sequence within the segment; strictly increasing by publish order
	Event   events.Event
	Size    int // stored (encoded) size in bytes
	// Attempts counts the failed delivery attempts recorded by Fail (for a
	// pending event) or at Park (for a dead one).
	Attempts int
	// Error is the last recorded failure (pending) or the reason it was
	// parked (dead).
	Error string
	// Dead reports whether the record was read from the parked set.
	Dead bool
	// ParkedAt is when a dead record was parked.
	ParkedAt time.Time
	// Corrupt is set when the stored bytes fail their CRC or do not decode:
	// Event is then empty and Raw holds the bytes. The relay parks such a
	// record instead of sending garbage.
	Corrupt error
	Raw     []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A dead record: version(1) | attempts uvarint | parked-at varint nanos |
// reason len+bytes | event bytes | crc32c of all before.
// An attempts record: version(1) | attempts uvarint | topic len+bytes |
// error len+bytes | crc32c.
func encodeDead(ev []byte, attempts int, reason string, at time.Time) []byte {
	b := make([]byte, 0, len(ev)+len(reason)+24)
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(attempts))
	b = binary.AppendVarint(b, at.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(reason)))
	b = append(b, reason...)
	b = append(b, ev...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadMeta = errors.New("bad record metadata")

func decodeDead(b []byte) (ev []byte, attempts int, reason string, at time.Time, err error) {
	if len(b) < 5 || b[0] != 1 || crc32.Checksum(b[:len(b)-4], castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, "", time.Time{}, errBadMeta
	}
	p := b[1 : len(b)-4]
	a, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, 0, "", time.Time{}, errBadMeta
	}
	p = p[n:]
	ns, n := binary.Varint(p)
	if n <= 0 {
		return nil, 0, "", time.Time{}, errBadMeta
	}
	p = p[n:]
	rl, n := binary.Uvarint(p)
	if n <= 0 || rl > uint64(len(p)-n) {
		return nil, 0, "", time.Time{}, errBadMeta
	}
	p = p[n:]
	return p[rl:], int(a), string(p[:rl]), time.Unix(0, ns).UTC(), nil
}

func encodeAttempts(attempts int, topic, msg string) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(attempts))
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = binary.AppendUvarint(b, uint64(len(msg)))
	b = append(b, msg...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeAttempts(b []byte) (attempts int, topic, msg string, ok bool) {
	if len(b) < 5 || b[0] != 1 || crc32.Checksum(b[:len(b)-4], castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, "", "", false
	}
	p := b[1 : len(b)-4]
	var strs [2]string
	a, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, "", "", false
	}
	p = p[n:]
	for i := range strs {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return 0, "", "", false
		}
		strs[i] = string(p[n : n+int(l)])
		p = p[n+int(l):]
	}
	return int(a), strs[0], strs[1], true
}

func seqKey(seq uint64) []byte { return u64(seq) }

func decodeInto(r *Record, raw []byte) {
	r.Size = len(raw)
	ev, err := events.Unmarshal(raw)
	if err != nil {
		r.Corrupt = err
		r.Raw = append([]byte(nil), raw...)
		return
	}
	r.Event = ev
}

// Read returns up to max pending records with a sequence above after, in
// sequence order, stopping early once maxBytes (when positive) of stored
// bytes were read. The records are copies: nothing aliases the bbolt map
// once Read returns, and no transaction stays open.
func (s *Segment) Read(after uint64, max, maxBytes int) ([]Record, error) {
	out := make([]Record, 0, min(max, 1024))
	err := s.view(func(tx *bolt.Tx) error {
		att := tx.Bucket(bucketAttempts)
		if k, _ := att.Cursor().First(); k == nil {
			att = nil // the usual case: no lookup per record
		}
		c := tx.Bucket(bucketPending).Cursor()
		total := 0
		from := s.pendingFrom(after)
		s.mu.Lock()
		ahead := len(s.ackedAhead) > 0
		s.mu.Unlock()
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < max; k, v = c.Next() {
			if ahead && s.ackedBeyond(getU64(k)) {
				continue // acknowledged, its watermark not there yet
			}
			if maxBytes > 0 && total > 0 && total+len(v) > maxBytes {
				break
			}
			total += len(v)
			r := Record{Segment: s.name, Seq: getU64(k)}
			decodeInto(&r, v)
			if att != nil {
				if a := att.Get(k); a != nil {
					r.Attempts, _, r.Error, _ = decodeAttempts(a)
				}
			}
			out = append(out, r)
		}
		if s.readSinceDrop.Add(int64(total)) >= dropEvery {
			s.readSinceDrop.Store(0)
			dropPages(tx, s.db)
		}
		return nil
	})
	if err != nil {
		return nil, &SegmentError{Op: "read", Path: s.path, Err: err}
	}
	return out, nil
}

// dropEvery is how many bytes Read reads from a segment between asking the
// kernel to drop its mapped pages (see dropPages): often enough to keep a
// draining relay's resident set small, rarely enough to cost nothing.
const dropEvery = 4 << 20

// ReadDead returns up to max parked records with a sequence above after.
func (s *Segment) ReadDead(after uint64, max int) ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			r := Record{Segment: s.name, Seq: getU64(k), Dead: true}
			ev, attempts, reason, at, err := decodeDead(v)
			if err != nil {
				r.Corrupt, r.Raw, r.Size = err, append([]byte(nil), v...), len(v)
			} else {
				decodeInto(&r, ev)
				r.Attempts, r.Error, r.ParkedAt = attempts, reason, at
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, &SegmentError{Op: "read", Path: s.path, Err: err}
	}
	return out, nil
}

// Ack records that the broker acknowledged the given pending records. All
// of one call share one commit (and that commit with concurrent publishes).
// Sequences no longer pending are ignored, so a repeated Ack is harmless.
//
// The own (live) segment deletes the records, so its writer's file reuses
// the space. A sealed segment instead moves a per-segment "acknowledged
// through" watermark over the contiguous acknowledged prefix, which costs
// a cursor walk rather than a B-tree delete per record: the file is
// deleted whole once drained. An acknowledged record above the watermark
// counts as pending until the gap below it closes.
func (s *Segment) Ack(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if !s.own {
		return s.write("ack", func(tx *bolt.Tx, d *delta) error { return s.ackWatermark(tx, d, seqs) })
	}
	return s.write("ack", func(tx *bolt.Tx, d *delta) error {
		p, att := tx.Bucket(bucketPending), tx.Bucket(bucketAttempts)
		if k, _ := att.Cursor().First(); k == nil {
			att = nil
		}
		// One cursor seek per key finds the record (for its size) and
		// deletes it in place: half the tree walks of Get then Delete.
		c := p.Cursor()
		for _, seq := range seqs {
			k := seqKey(seq)
			ck, v := c.Seek(k)
			if ck == nil || getU64(ck) != seq {
				continue // no longer pending: a repeated ack
			}
			d.pendingN--
			d.pendingBytes -= int64(len(v))
			if err := c.Delete(); err != nil {
				return err
			}
			if att != nil { // deleting a missing key is a no-op
				if err := att.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Park moves a pending record to the dead set with the reason it can never
// be delivered (the broker's error) and its attempt count. A parked record
// stays visible to dump and stats until Requeue.
func (s *Segment) Park(seq uint64, attempts int, reason string) error {
	return s.write("park", func(tx *bolt.Tx, d *delta) error {
		if s.acknowledged(seq, d) {
			return nil
		}
		k := seqKey(seq)
		p := tx.Bucket(bucketPending)
		v := p.Get(k)
		if v == nil {
			return nil
		}
		rec := encodeDead(v, attempts, reason, time.Now())
		d.pendingN--
		d.pendingBytes -= int64(len(v))
		d.deadN++
		if err := tx.Bucket(bucketDead).Put(k, rec); err != nil {
			return err
		}
		if err := p.Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAttempts).Delete(k); err != nil {
			return err
		}
		if s.own {
			return nil
		}
		// The parked record may have been the gap below acknowledgements
		// that arrived ahead of it: move the watermark over them now, or
		// they would count as pending until an Ack that may never come.
		return s.ackWatermark(tx, d, nil)
	})
}

// Fail records a failed delivery attempt of a pending record that stays
// pending (the topic is missing, or not authorised), so that stats and dump
// can show why it waits. It returns the attempt count now stored.
func (s *Segment) Fail(seq uint64, topic, reason string) (int, error) {
	n := 0
	err := s.failMany([]Failure{{Seq: seq, Topic: topic, Reason: reason}}, func(a int) { n = a })
	return n, err
}

// requeue moves parked records back to pending under new sequences (so
// they drain after what is pending now). match selects records by ID; nil
// selects all. It returns the IDs moved.
func (s *Segment) requeue(match func(id string) bool) ([]string, error) {
	var moved []string
	err := s.write("requeue", func(tx *bolt.Tx, d *delta) error {
		moved = moved[:0]
		dead, p := tx.Bucket(bucketDead), tx.Bucket(bucketPending)
		var keys [][]byte
		c := dead.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			ev, _, _, _, err := decodeDead(v)
			if err != nil {
				continue // a damaged parked record stays parked
			}
			e, err := events.Unmarshal(ev)
			if err != nil || (match != nil && !match(e.ID)) {
				continue
			}
			seq, err := p.NextSequence()
			if err != nil {
				return err
			}
			if err := p.Put(seqKey(seq), ev); err != nil {
				return err
			}
			keys = append(keys, append([]byte(nil), k...))
			moved = append(moved, e.ID)
			d.pendingN++
			d.pendingBytes += int64(len(ev))
			d.deadN--
		}
		for _, k := range keys {
			if err := dead.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return moved, err
}

// putEvents appends encoded events to the pending bucket.
func putEvents(recs [][]byte) func(tx *bolt.Tx, d *delta) error {
	return func(tx *bolt.Tx, d *delta) error {
		p := tx.Bucket(bucketPending)
		// Keys only ever grow, so pages split as they fill are never
		// written into again: pack them full (bbolt's default leaves half
		// of every page empty for inserts that never come).
		p.FillPercent = 1.0
		for _, r := range recs {
			seq, err := p.NextSequence()
			if err != nil {
				return err
			}
			if err := p.Put(seqKey(seq), r); err != nil {
				return fmt.Errorf("put: %w", err)
			}
			d.pendingN++
			d.pendingBytes += int64(len(r))
		}
		return nil
	}
}

// Failure is one failed delivery attempt of a pending record, for FailMany.
type Failure struct {
	Seq    uint64
	Topic  string
	Reason string
}

// FailMany records several failed attempts in one commit (see Fail).
func (s *Segment) FailMany(fs []Failure) error {
	if len(fs) == 0 {
		return nil
	}
	return s.failMany(fs, nil)
}

// failMany stores one more attempt for each pending record of fs, calling
// counted (when set) with each new attempt count.
func (s *Segment) failMany(fs []Failure, counted func(int)) error {
	return s.write("record failures", func(tx *bolt.Tx, d *delta) error {
		p, att := tx.Bucket(bucketPending), tx.Bucket(bucketAttempts)
		for _, f := range fs {
			k := seqKey(f.Seq)
			if p.Get(k) == nil || s.acknowledged(f.Seq, d) {
				continue
			}
			n := 1
			if old := att.Get(k); old != nil {
				a, _, _, _ := decodeAttempts(old)
				n = a + 1
			}
			if err := att.Put(k, encodeAttempts(n, f.Topic, f.Reason)); err != nil {
				return err
			}
			if counted != nil {
				counted(n)
			}
		}
		return nil
	})
}

// ackWatermark adds seqs to the acknowledged set and moves the watermark
// over every pending key that is acknowledged, stopping at the first that
// is not. Keys no longer pending (parked) are not in the bucket, so the
// walk steps over them. The counters drop by what the watermark covers.
// Nothing in memory changes until the commit succeeded (applyDelta), so a
// rolled-back batch leaves no trace.
func (s *Segment) ackWatermark(tx *bolt.Tx, d *delta, seqs []uint64) error {
	s.mu.Lock()
	wm := s.wm
	if d.wm > wm {
		wm = d.wm
	}
	acked := make(map[uint64]bool, len(s.ackedAhead)+len(d.ackAdd)+len(seqs))
	for q := range s.ackedAhead {
		acked[q] = true
	}
	s.mu.Unlock()
	for _, q := range d.ackAdd {
		acked[q] = true
	}
	for _, q := range d.ackCover {
		delete(acked, q)
	}
	for _, q := range seqs {
		if q > wm && !acked[q] {
			acked[q] = true
			d.ackAdd = append(d.ackAdd, q)
		}
	}
	c := tx.Bucket(bucketPending).Cursor()
	moved := false
	for k, v := c.Seek(seqKey(wm + 1)); k != nil; k, v = c.Next() {
		q := getU64(k)
		if !acked[q] {
			break
		}
		wm, moved = q, true
		d.ackCover = append(d.ackCover, q)
		d.pendingN--
		d.pendingBytes -= int64(len(v))
	}
	if !moved {
		return nil
	}
	d.wm = wm
	return tx.Bucket(bucketMeta).Put(keyAckedThrough, u64(wm))
}

// acknowledged reports whether a sealed segment's seq was already
// acknowledged (under the watermark, or above it): such a record is still
// in the bucket but no longer pending, and must not be parked or counted.
func (s *Segment) acknowledged(seq uint64, d *delta) bool {
	if s.own {
		return false
	}
	if seq <= d.wm {
		return true
	}
	for _, q := range d.ackAdd {
		if q == seq {
			return true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return seq <= s.wm || s.ackedAhead[seq]
}
