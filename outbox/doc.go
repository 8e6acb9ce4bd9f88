// Package outbox is boltrelay's durable local store: a directory of bbolt
// segment files into which publishers write events synchronously, and from
// which a relay drains them to Kafka.
//
// Each process that opens an outbox for writing creates a segment of its
// own and holds bbolt's exclusive file lock on it until Close, so two
// processes never write one file. A segment is live while its writer holds
// the lock and sealed after Close, or after its writer died (the kernel
// drops the lock). A relay drains its own process's live segment and any
// sealed segment it can lock (Claim), and deletes a sealed segment once it
// is drained: bbolt files never shrink, deleting them is how disk space
// comes back.
//
// Inside a segment, bucket "pending" maps a big-endian uint64 sequence to an
// encoded event (package events' codec, CRC-32C per record); bucket "dead"
// holds parked events with their reason and attempt count; bucket
// "attempts" records failed attempts of events that stay pending; bucket
// "meta" holds the format version, the segment's counters and, for a sealed
// segment being drained, its "acknowledged through" watermark: keys at or
// below it are delivered and skipped by every reader (the file is deleted
// whole once drained, so they need not be deleted one by one).
//
// # Guarantees
//
//   - Publish returns nil only after the bbolt commit holding its events
//     returned, with fsync (unless UnsafeNoSync): a process killed at any
//     later point loses none of them.
//   - A Publish call is atomic: all of its events are stored or none.
//   - Concurrent publishers share commits (group commit) without any added
//     delay: an idle outbox commits the first caller at once, and callers
//     arriving during a commit go into the next one.
//   - Sequences within a segment are strictly increasing in commit order,
//     so one writer's events drain in the order they were published.
//   - Publish never touches the network and never waits for a relay. When a
//     pending limit is set and reached it returns ErrFull (or waits, with
//     BlockWhenFull, until its context ends); it never drops an event.
//   - Creating a segment is atomic (temporary name, then rename and a
//     directory sync): a process killed while opening leaves no file that
//     looks damaged.
//   - Every lock wait is bounded (LockTimeout); a conflict is an error
//     naming the segment.
//   - A damaged segment file is reported with its path (ErrDamaged) and
//     skipped; the other segments remain readable and drainable. A panic
//     from bbolt on a corrupt page is turned into that error.
//   - Close is idempotent, waits for publishes in progress and releases
//     every lock this handle holds.
//   - Dump and ReadStats open segments read-only and never modify a file.
//
// # Caveats
//
//   - Inspection (Dump, ReadStats, Requeue) cannot read a segment locked by
//     another process: a live writer's own segment, or one a relay is
//     draining. Such segments are reported as held.
//   - MaxPendingBytes and MaxPendingEvents bound this writer's own segment,
//     not the whole directory.
//   - Requeued events get new sequence numbers: they drain after what is
//     pending, so their order relative to other events of their key is not
//     kept.
//   - A live segment never shrinks while its writer runs; its space comes
//     back when the writer closes it and it is drained and deleted.
package outbox
