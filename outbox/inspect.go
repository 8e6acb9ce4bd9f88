package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func dirJoin(dir, name string) string { return filepath.Join(dir, name) }

// inspectCfg builds the configuration of the directory-level functions and
// checks that dir is an existing directory: inspection never creates one.
func inspectCfg(dir string, opts []Option) (cfg, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return c, fmt.Errorf("outbox: %w", err)
	case !fi.IsDir():
		return c, fmt.Errorf("outbox: %s is not a directory", dir)
	}
	return c, nil
}

// DumpOptions selects what Dump visits.
type DumpOptions struct {
	Pending bool // visit pending records
	Dead    bool // visit parked records
	Limit   int  // stop after this many records; 0 means no limit
}

// dumpPage is how many records Dump reads per transaction, so that a huge
// segment never holds a read transaction (and its memory) for long.
const dumpPage = 512

// Dump visits the records of every segment in dir, in drain order, opening
// each segment read-only (it never writes to a file). Segments it cannot
// open (locked by a live process beyond the lock timeout, or damaged) are
// skipped and returned; the others are still visited. fn returning an
// error stops the walk with that error.
func Dump(dir string, d DumpOptions, fn func(Record) error, opts ...Option) ([]SegmentInfo, error) {
	c, err := inspectCfg(dir, opts)
	if err != nil {
		return nil, err
	}
	names, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var skipped []SegmentInfo
	n := 0
	for _, name := range names {
		path := dirJoin(dir, name)
		s, err := openSegment(path, &c, c.lockTimeout, true)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			skipped = append(skipped, infoFor(name, path, err))
			continue
		}
		done, err := dumpSegment(s, d, &n, fn)
		_ = s.close()
		if err != nil {
			var se *SegmentError
			if errors.As(err, &se) && errors.Is(err, ErrDamaged) {
				skipped = append(skipped, infoFor(name, path, err))
				continue
			}
			return skipped, err
		}
		if done {
			break
		}
	}
	return skipped, nil
}

func dumpSegment(s *Segment, d DumpOptions, n *int, fn func(Record) error) (bool, error) {
	for _, dead := range []bool{false, true} {
		if (!dead && !d.Pending) || (dead && !d.Dead) {
			continue
		}
		var after uint64
		for {
			var recs []Record
			var err error
			if dead {
				recs, err = s.ReadDead(after, dumpPage)
			} else {
				recs, err = s.Read(after, dumpPage, 0)
			}
			if err != nil {
				return false, err
			}
			for _, r := range recs {
				if d.Limit > 0 && *n >= d.Limit {
					return true, nil
				}
				if err := fn(r); err != nil {
					return true, err
				}
				*n++
			}
			if len(recs) < dumpPage {
				break
			}
			after = recs[len(recs)-1].Seq
		}
	}
	return false, nil
}

func infoFor(name, path string, err error) SegmentInfo {
	info := SegmentInfo{Name: name, PID: SegmentPID(name), Err: err, State: StateDamaged}
	if fi, serr := os.Stat(path); serr == nil {
		info.Size = fi.Size()
	}
	if errors.Is(err, ErrLocked) {
		info.State = StateHeld
	}
	return info
}

// Requeue moves parked events back to pending in every segment of dir it
// can lock: all of them when ids is empty, else those with the given IDs.
// It returns the IDs moved. IDs not found parked, and segments it could
// not lock, are reported in the error (what could be moved was moved).
func Requeue(dir string, ids []string, opts ...Option) ([]string, error) {
	c, err := inspectCfg(dir, opts)
	if err != nil {
		return nil, err
	}
	names, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	want, match := idMatcher(ids)
	var moved []string
	var errs []error
	for _, name := range names {
		path := dirJoin(dir, name)
		s, err := openSegment(path, &c, c.lockTimeout, false)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		m, err := s.requeue(match)
		errs = append(errs, err, s.close())
		moved = append(moved, m...)
		for _, id := range m {
			delete(want, id)
		}
	}
	if len(ids) > 0 && len(want) > 0 {
		var missing []string
		for _, id := range ids {
			if want[id] {
				missing = append(missing, id)
			}
		}
		errs = append(errs, fmt.Errorf("%w: not parked in any readable segment: %s", ErrNotFound, strings.Join(missing, ", ")))
	}
	return moved, errors.Join(errs...)
}

// Requeue moves parked events of this handle's own and claimed segments
// back to pending (all when ids is empty). IDs not parked in any of them
// are named in an error wrapping ErrNotFound (the others are still moved).
// See the package function Requeue for segments held by no one.
func (o *Outbox) Requeue(ids ...string) ([]string, error) {
	if o.isClosed() {
		return nil, ErrClosed
	}
	want, match := idMatcher(ids)
	segs := []*Segment{}
	if o.own != nil {
		segs = append(segs, o.own)
	}
	o.mu.Lock()
	for _, s := range o.claimed {
		segs = append(segs, s)
	}
	o.mu.Unlock()
	var moved []string
	for _, s := range segs {
		m, err := s.requeue(match)
		if err != nil {
			return moved, err
		}
		moved = append(moved, m...)
		for _, id := range m {
			delete(want, id)
		}
	}
	if len(moved) > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	if len(want) > 0 {
		var missing []string
		for _, id := range ids {
			if want[id] {
				missing = append(missing, id)
				delete(want, id)
			}
		}
		return moved, fmt.Errorf("%w: not parked in this handle's segments: %s", ErrNotFound, strings.Join(missing, ", "))
	}
	return moved, nil
}

// idMatcher returns the set of ids still wanted and a matcher for them; the
// matcher is nil (match everything) when ids is empty.
func idMatcher(ids []string) (map[string]bool, func(string) bool) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	if len(ids) == 0 {
		return want, nil
	}
	return want, func(id string) bool { return want[id] }
}
