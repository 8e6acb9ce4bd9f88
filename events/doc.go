// Package events defines the event envelope that boltrelay stores and
// delivers, the agent event kinds its users publish, and the versioned binary
// codec used to store an event in an outbox segment.
//
// The package knows nothing of Kafka or bbolt: it is the vocabulary shared by
// the outbox (which stores encoded events) and the relay (which maps them to
// CloudEvents 1.0 binary-mode Kafka records).
//
// # Guarantees
//
//   - An Event's ID, once assigned, is stable: it is stored with the event and
//     sent as the ce_id header on every delivery attempt, so consumers can
//     deduplicate redeliveries.
//   - IDs from NewID are UUIDv7: time-ordered, and strictly increasing within
//     one process even when the clock stands still or steps back.
//   - Unmarshal never panics: any byte slice either decodes to the event that
//     Marshal encoded, or returns an error wrapping ErrCorrupt (checked by a
//     CRC-32C over the whole record and by bounds checks on every field).
//   - Validate reports the first problem as an error naming the field.
//
// # Caveats
//
//   - Redaction (Redact, RedactUserRequest) is a best-effort pattern match for
//     secret-looking tokens; it is not a data-loss-prevention system.
//   - Header names beginning with "ce_" and the name "content-type" are
//     reserved for the CloudEvents mapping and rejected by Validate.
package events
