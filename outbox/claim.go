package outbox

import (
	"errors"
	"os"
	"time"
)

// SegmentState says what a segment file is to this process.
type SegmentState string

// Segment states reported by Claim and the inspection functions.
const (
	StateOwn     SegmentState = "own"     // this process's live segment
	StateClaimed SegmentState = "claimed" // sealed, held by this process for draining
	StateHeld    SegmentState = "held"    // locked by another process (a live writer or relay)
	StateSealed  SegmentState = "sealed"  // not locked; nothing pending (parked events only)
	StateDamaged SegmentState = "damaged" // cannot be read; left alone
)

// SegmentInfo describes a segment file that Claim did not hand out.
type SegmentInfo struct {
	Name  string
	State SegmentState
	PID   int   // writer pid from the name (0 if unknown)
	Size  int64 // file size in bytes
	Err   error // why it is held or damaged
}

// claimProbe is how long Claim waits for a sealed segment's lock: it only
// needs to know whether the lock is free now, and is called again soon.
const claimProbe = time.Millisecond

// Claim returns the segments this handle can drain now, in drain order
// (oldest first; the own segment, created at Open, sorts after every
// sealed segment older than it), and describes the others. Sealed segments
// left by closed or dead writers are opened and locked here; one with
// nothing pending and nothing parked is deleted at once, one with only
// parked events is released again so inspection tools can read it.
// A damaged segment is reported and skipped; the others still drain.
func (o *Outbox) Claim() ([]*Segment, []SegmentInfo, error) {
	if o.isClosed() {
		return nil, nil, ErrClosed
	}
	names, temps, err := scanDir(o.dir)
	if err != nil {
		return nil, nil, err
	}
	// Cleaning up after writers that died mid-create is the relay's job,
	// not every writer's: Open must not read the whole directory.
	removeStaleTemps(o.dir, temps, time.Now())
	var segs []*Segment
	var others []SegmentInfo
	for _, name := range names {
		if o.own != nil && name == o.own.name {
			segs = append(segs, o.own)
			continue
		}
		o.mu.Lock()
		s, ok := o.claimed[name]
		sk, known := o.skip[name]
		o.mu.Unlock()
		if ok {
			segs = append(segs, s)
			continue
		}
		path := o.segPath(name)
		fi, err := os.Stat(path)
		if err != nil {
			continue // removed since the listing (drained by another relay)
		}
		if known && sk.unchanged(fi) {
			others = append(others, sk.info)
			continue
		}
		s, err = openSegment(path, &o.cfg, claimProbe, false)
		switch {
		case errors.Is(err, ErrLocked):
			others = append(others, SegmentInfo{Name: name, State: StateHeld, PID: SegmentPID(name), Size: fi.Size(), Err: err})
			continue
		case err != nil:
			info := SegmentInfo{Name: name, State: StateDamaged, PID: SegmentPID(name), Size: fi.Size(), Err: err}
			o.remember(fi, info)
			others = append(others, info)
			continue
		}
		if s.Pending() == 0 {
			if err := o.release(s); err != nil {
				return segs, others, err
			}
			if s.Dead() > 0 {
				others = append(others, SegmentInfo{Name: name, State: StateSealed, PID: SegmentPID(name), Size: fi.Size()})
			}
			continue
		}
		// o.closed belongs to closeMu; holding o.mu across the check
		// orders it against Close's swap of o.claimed, so a segment
		// added here is either seen by Close or closed right here.
		o.mu.Lock()
		if o.isClosed() {
			o.mu.Unlock()
			_ = s.close()
			return nil, nil, ErrClosed
		}
		o.claimed[name] = s
		o.mu.Unlock()
		o.cfg.logger.Debug("outbox: sealed segment claimed", "segment", path, "pending", s.Pending())
		segs = append(segs, s)
	}
	return segs, others, nil
}

// Release gives back a claimed sealed segment once nothing in it is pending:
// it is deleted when it holds nothing, otherwise (parked events remain)
// closed and left for inspection and requeue. Releasing the own segment or
// one still pending does nothing.
func (o *Outbox) Release(s *Segment) error {
	if s == nil || s.own || s.Pending() > 0 {
		return nil
	}
	o.mu.Lock()
	if o.claimed[s.name] != s {
		o.mu.Unlock()
		return nil
	}
	delete(o.claimed, s.name)
	o.mu.Unlock()
	return o.release(s)
}

func (o *Outbox) release(s *Segment) error {
	dead := s.Dead() > 0
	err := o.closeSegment(s)
	if dead {
		if fi, serr := os.Stat(s.path); serr == nil {
			o.remember(fi, SegmentInfo{Name: s.name, State: StateSealed, PID: SegmentPID(s.name), Size: fi.Size()})
		}
	}
	return err
}

// skipped is what Claim remembers of a segment it need not open again.
type skipped struct {
	mtime time.Time
	size  int64
	info  SegmentInfo
}

func (k skipped) unchanged(fi os.FileInfo) bool {
	return k.mtime.Equal(fi.ModTime()) && k.size == fi.Size()
}

// remember records a segment Claim can skip until its file changes (a
// requeue, a repair).
func (o *Outbox) remember(fi os.FileInfo, info SegmentInfo) {
	o.mu.Lock()
	o.skip[info.Name] = skipped{mtime: fi.ModTime(), size: fi.Size(), info: info}
	o.mu.Unlock()
}
