// Package bench is boltrelay's measurement harness, behind `relay bench`.
//
// One Run measures, on the disk of Config.Dir: the raw write+fdatasync rate
// (the physical floor); the naive bbolt outboxes (one Update per event,
// DB.Batch); outbox.Publish at several concurrencies; end-to-end latency
// from Publish to the broker's acknowledgement through an embedded relay;
// a backlog built without a relay, with Publish timed against it; the relay
// draining that backlog against franz-go producing the same records
// directly; and the relay process's peak RSS. The Result checks the targets
// of the "Performance: relay bench" issue, prints as an aligned table
// (WriteTable) and marshals to one JSON object with stable snake_case
// names, documented in docs/benchmarks.md.
//
// Without Config.Brokers every Kafka-facing measurement gets a fresh
// embedded kfake cluster in this process. Every step is bounded, and Run
// removes everything it created under Dir before it returns.
package bench
