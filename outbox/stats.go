package outbox

import (
	"errors"
	"os"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

// Stats summarises an outbox directory.
type Stats struct {
	Pending       int64     // events waiting for delivery
	PendingBytes  int64     // their stored size
	Dead          int64     // events parked as undeliverable
	OldestPending time.Time // creation time of the oldest pending event (zero if none)
	Segments      int       // segment files in the directory
	LiveSegments  int       // segments locked by a live process (their writer, or a relay)
	DiskBytes     int64     // size of all segment files
	// LiveBytes is the part of DiskBytes in use by bbolt pages (the rest is
	// free pages a file keeps until it is deleted).
	LiveBytes int64
	// Held names segments locked by another process: their events are not
	// in the counts above.
	Held []SegmentInfo
	// Damaged names segments that cannot be read.
	Damaged []SegmentInfo
	// Failing lists topics whose pending events have recorded failed
	// attempts (a missing topic, missing authorisation), worst first.
	Failing []FailingTopic
}

// FailingTopic is a topic with pending events that failed to deliver.
type FailingTopic struct {
	Topic       string
	Events      int64  // pending events with a recorded failure
	MaxAttempts int    // highest attempt count among them
	LastError   string // the error of the one with most attempts
}

// Stats summarises the whole directory: this handle's own and claimed
// segments, and every other segment it can open read-only at once. Segments
// locked by other processes are listed in Held.
func (o *Outbox) Stats() (Stats, error) {
	if o.isClosed() {
		return Stats{}, ErrClosed
	}
	held := map[string]*Segment{}
	if o.own != nil {
		held[o.own.name] = o.own
	}
	o.mu.Lock()
	for n, s := range o.claimed {
		held[n] = s
	}
	o.mu.Unlock()
	return collectStats(o.dir, &o.cfg, claimProbe, held)
}

// ReadStats summarises the outbox in dir without writing to it, waiting up
// to the LockTimeout option for each segment's lock.
func ReadStats(dir string, opts ...Option) (Stats, error) {
	c, err := inspectCfg(dir, opts)
	if err != nil {
		return Stats{}, err
	}
	return collectStats(dir, &c, c.lockTimeout, nil)
}

func collectStats(dir string, c *cfg, timeout time.Duration, mine map[string]*Segment) (Stats, error) {
	var st Stats
	names, err := listSegments(dir)
	if err != nil {
		return st, err
	}
	failing := map[string]*FailingTopic{}
	for _, name := range names {
		path := dirJoin(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		st.Segments++
		st.DiskBytes += fi.Size()
		s, ok := mine[name]
		if ok {
			if s.own {
				st.LiveSegments++
			}
		} else {
			s, err = openSegment(path, c, timeout, true)
			if err != nil {
				info := SegmentInfo{Name: name, PID: SegmentPID(name), Size: fi.Size(), Err: err}
				if errors.Is(err, ErrLocked) {
					info.State = StateHeld
					st.LiveSegments++
					st.Held = append(st.Held, info)
				} else {
					info.State = StateDamaged
					st.Damaged = append(st.Damaged, info)
				}
				continue
			}
		}
		err = segmentStats(s, &st, failing)
		if !ok {
			_ = s.close()
		}
		if err != nil {
			st.Damaged = append(st.Damaged, SegmentInfo{Name: name, State: StateDamaged, PID: SegmentPID(name), Size: fi.Size(), Err: err})
		}
	}
	for _, f := range failing {
		st.Failing = append(st.Failing, *f)
	}
	sort.Slice(st.Failing, func(i, j int) bool {
		if st.Failing[i].MaxAttempts != st.Failing[j].MaxAttempts {
			return st.Failing[i].MaxAttempts > st.Failing[j].MaxAttempts
		}
		return st.Failing[i].Topic < st.Failing[j].Topic
	})
	return st, nil
}

func segmentStats(s *Segment, st *Stats, failing map[string]*FailingTopic) error {
	s.mu.Lock()
	st.Pending += s.pendingN
	st.PendingBytes += s.pendingBytes
	st.Dead += s.deadN
	s.mu.Unlock()
	dbs := s.db.Stats()
	pageSize := int64(s.db.Info().PageSize)
	return s.view(func(tx *bolt.Tx) error {
		st.LiveBytes += tx.Size() - int64(dbs.FreePageN+dbs.PendingPageN)*pageSize
		if k, v := tx.Bucket(bucketPending).Cursor().Seek(seqKey(s.pendingFrom(0))); k != nil {
			if e, err := events.Unmarshal(v); err == nil {
				created := e.Time
				if t, err := events.IDTime(e.ID); err == nil {
					created = t // the ID's time is when it was published
				}
				if st.OldestPending.IsZero() || created.Before(st.OldestPending) {
					st.OldestPending = created
				}
			}
		}
		var d delta
		return tx.Bucket(bucketAttempts).ForEach(func(k, v []byte) error {
			if s.acknowledged(getU64(k), &d) {
				// A sealed segment keeps an acknowledged record's key
				// (and its attempts) until the file is deleted: it
				// no longer fails.
				return nil
			}
			n, topic, msg, ok := decodeAttempts(v)
			if !ok {
				return nil
			}
			f := failing[topic]
			if f == nil {
				f = &FailingTopic{Topic: topic}
				failing[topic] = f
			}
			f.Events++
			if n >= f.MaxAttempts {
				f.MaxAttempts, f.LastError = n, msg
			}
			return nil
		})
	})
}
