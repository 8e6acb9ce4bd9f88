package relay

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrStillPending is wrapped by a Once run that ended with events kept
// pending because their topic is in the waiting class.
var ErrStillPending = errors.New("relay: events still pending")

// ErrDrainTimeout is wrapped by Run when its context ended and records
// handed to Kafka were not acknowledged within the drain timeout. They
// stay pending and are sent again by a later run (with the same ce_id).
var ErrDrainTimeout = errors.New("relay: drain timeout: unacknowledged records left pending")

// ErrAlreadyRunning is returned by Run when the relay is already running.
var ErrAlreadyRunning = errors.New("relay: already running")

// Class is what the relay does with an event whose produce failed.
type Class int

// The error classes. See docs/guarantees.md.
const (
	// Transient failures (connection, timeouts, leadership moves, the
	// client shutting down): the event stays pending and is retried with
	// capped exponential backoff. Never parked, never deleted.
	Transient Class = iota
	// Waiting failures (the topic is missing, or not authorised): the
	// event stays pending with its error and attempt count recorded; its
	// topic is retried at backoff pace while other topics keep flowing.
	Waiting
	// Permanent failures (the broker will never take this record): the
	// event is parked in the dead set with the broker's reason. Because the
	// broker fails a whole batch for one such record, the relay first
	// re-sends the failed records one at a time and parks only those that
	// fail alone.
	Permanent
	// TooLarge is Permanent for one record (MESSAGE_TOO_LARGE), named
	// apart because the record's size goes into the park reason.
	TooLarge
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Waiting:
		return "waiting"
	case Permanent:
		return "permanent"
	case TooLarge:
		return "too-large"
	}
	return "unknown"
}

// Classify returns the class of a produce error (bare or wrapped). An
// error it does not know is Transient: the cost of a wrong guess there is
// a retry, where a wrong Permanent would park (or lose) data in an outage.
func Classify(err error) Class {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return TooLarge
	case errors.Is(err, kerr.InvalidTopicException), errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.PolicyViolation), errors.Is(err, kerr.CorruptMessage),
		errors.Is(err, kerr.InvalidRequiredAcks), errors.Is(err, kerr.InvalidTimestamp):
		return Permanent
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID),
		errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.SaslAuthenticationFailed):
		return Waiting
	}
	// Everything else is transient: dial and connection errors, timeouts
	// (REQUEST_TIMED_OUT, kgo.ErrRecordTimeout), leadership moves
	// (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE), NOT_ENOUGH_REPLICAS,
	// kgo.ErrClientClosed and kgo.ErrRecordRetries, context.Canceled and
	// DeadlineExceeded, and every Kafka code or error not listed above.
	return Transient
}
