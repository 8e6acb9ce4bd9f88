package outbox

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by every operation on an Outbox (or one of its
// segments) after Close.
var ErrClosed = errors.New("outbox: closed")

// ErrFull is returned by Publish when accepting the events would exceed
// MaxPendingBytes or MaxPendingEvents. Nothing of that call was stored.
var ErrFull = errors.New("outbox: full")

// ErrLocked is wrapped when a segment is held by another process (or
// another handle in this one) beyond the lock timeout.
var ErrLocked = errors.New("outbox: segment is locked by another writer or relay")

// ErrDamaged is wrapped when a segment file cannot be read as a bbolt
// database of this format (truncated, overwritten, or of a newer version).
var ErrDamaged = errors.New("outbox: segment is damaged")

// ErrReadOnly is returned by Publish on an outbox opened WithoutWriter.
var ErrReadOnly = errors.New("outbox: opened without a writer segment")

// ErrNotFound is returned by Requeue for an ID that is not parked.
var ErrNotFound = errors.New("outbox: event not found")

// SegmentError names the segment file an error concerns.
type SegmentError struct {
	Op   string // what was being done: "open", "read", "ack", ...
	Path string // the segment file
	Err  error
}

func (e *SegmentError) Error() string { return fmt.Sprintf("outbox: %s %s: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *SegmentError) Unwrap() error { return e.Err }
