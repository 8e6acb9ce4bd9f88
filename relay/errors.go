package relay

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
	var ke *kerr.Error
	switch {
	case err == nil:
		return Transient
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
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, kgo.ErrRecordTimeout),
		errors.Is(err, kgo.ErrRecordRetries), errors.Is(err, kgo.ErrMaxBuffered):
		return Transient
	case errors.As(err, &ke):
		// Every other Kafka error code: retriable ones (NOT_LEADER,
		// LEADER_NOT_AVAILABLE, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT...)
		// are transient by definition; non-retriable ones we have not
		// listed are treated as transient too, see above.
		return Transient
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Transient
	}
	return Transient
}
