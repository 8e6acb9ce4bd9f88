// Package relay drains a boltrelay outbox to Kafka with franz-go, deleting
// an event only after the broker acknowledged it.
//
// A Relay runs as a goroutine inside the process that publishes (it is
// woken by Publish, with no polling delay) or as the standalone `relay run`
// process (it scans the directory for sealed segments). Either way Run
// blocks, owns its franz-go client, and returns only after closing it:
//
//	var wg sync.WaitGroup
//	ctx, stop := context.WithCancel(context.Background())
//	wg.Add(1)
//	go func() { defer wg.Done(); _ = r.Run(ctx) }()
//	// ... publish ...
//	stop()
//	wg.Wait() // the relay, its Kafka client and every goroutine they started are gone
//	_ = ob.Close()
//
// Events travel as CloudEvents 1.0 in binary content mode: ce_specversion,
// ce_id, ce_type, ce_source, ce_time, ce_subject (when set) and
// content-type headers; the event key as record key; the data as value.
//
// # Guarantees
//
//   - At least once: an event is deleted from the outbox only after Kafka
//     acknowledged it (acks=all, idempotent producer). A relay killed at any
//     point re-sends what was in flight, with the same ce_id.
//   - Per-key order within one writer's events, as franz-go's idempotent
//     producer keeps it per partition (murmur2 key partitioning, as Kafka's
//     own producer).
//   - Failures are classified (Classify): transient ones are retried with
//     capped exponential backoff and never park or delete anything; waiting
//     ones (a missing topic) keep their events pending while other topics
//     flow; permanent ones park the one event with the broker's reason. A
//     batch rejected as too large is re-sent one record at a time so only
//     the culprit is parked.
//   - Shutdown is bounded by the drain timeout, even against a broker that
//     accepts connections and never answers: what is unacknowledged then
//     stays pending.
//   - No bbolt write transaction is held across Kafka I/O:
//     acknowledgements are recorded in batched commits after the fact.
//   - A panic in the loop is recovered, counted in Health, and the loop is
//     restarted after a backoff.
//
// # Caveats
//
//   - Events in flight when a relay dies are sent again: consumers that
//     need exactly-once processing deduplicate on ce_id.
//   - Per-key order holds for events delivered in one pass. An event that
//     waited (its topic was missing) or was requeued may arrive after later
//     events of its key to other topics; within a topic, the records held
//     back by the too-large isolation are re-sent before any later ones.
//   - The relay must stop (Run returned) before its outbox is closed; in the
//     other order acknowledgements cannot be recorded and Run returns an
//     error wrapping outbox.ErrClosed. Nothing is lost, but delivered
//     events will be delivered again.
package relay
