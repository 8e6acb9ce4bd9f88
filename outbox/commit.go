package outbox

import (
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// delta is what one commit changes in a segment's counters; the committer
// writes the new totals in the same transaction and applies them in memory
// only after the commit succeeded, so the two never disagree.
type delta struct {
	pendingN, pendingBytes, deadN int64
	// reservations released by the commit: a publish's events move from
	// reserved to pending in one step, never counting twice.
	unreserveN, unreserveBytes int64
	// Watermark acknowledgement of a sealed segment (see Segment.Ack):
	// the new watermark (0: unchanged), the sequences newly acknowledged
	// beyond it, and those the watermark now covers.
	wm       uint64
	ackAdd   []uint64
	ackCover []uint64
}

type opResult struct {
	err  error
	lead bool // the receiver now leads the next commit
}

type op struct {
	fn   func(tx *bolt.Tx, d *delta) error
	done chan opResult
}

// committer is group commit without added delay. A caller that finds no
// commit running commits its own op at once; callers that arrive while a
// commit runs queue up, and when it ends the oldest of them is handed the
// lead and commits the whole queue in one transaction (one fsync). No
// goroutine of its own: leadership moves between callers, so there is
// nothing to stop at Close. bbolt's DB.Batch is not used because its 10 ms
// default delay would be the latency floor of every Publish.
type committer struct {
	mu    sync.Mutex
	queue []*op
	busy  bool
	seg   *Segment

	commits atomic.Int64 // successful commits, for tests and benchmarks
}

func (c *committer) do(fn func(tx *bolt.Tx, d *delta) error) error {
	o := &op{fn: fn, done: make(chan opResult, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, o)
	if c.busy {
		c.mu.Unlock()
		r := <-o.done
		if !r.lead {
			return r.err
		}
		c.mu.Lock()
	}
	c.busy = true
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()

	c.run(batch)

	c.mu.Lock()
	if len(c.queue) > 0 {
		next := c.queue[0]
		next.done <- opResult{lead: true}
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	return (<-o.done).err
}

// run commits batch in one transaction. If one op fails, the transaction is
// rolled back, that op gets its error, and the others are committed again
// without it: one caller's bad op never fails or half-applies another's.
func (c *committer) run(batch []*op) {
	for len(batch) > 0 {
		var d delta
		failed := -1
		err := c.seg.update(func(tx *bolt.Tx) error {
			for i, o := range batch {
				if err := o.fn(tx, &d); err != nil {
					failed = i
					return err
				}
			}
			return c.seg.writeCounters(tx, d)
		})
		if err == nil {
			c.commits.Add(1)
			c.seg.applyDelta(d)
			for _, o := range batch {
				o.done <- opResult{}
			}
			return
		}
		if failed < 0 {
			for _, o := range batch {
				o.done <- opResult{err: err}
			}
			return
		}
		batch[failed].done <- opResult{err: err}
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}
