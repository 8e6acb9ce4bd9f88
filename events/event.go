package events

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one event as a publisher hands it to the outbox and as the relay
// sends it to Kafka (CloudEvents 1.0 binary content mode).
type Event struct {
	// ID is the event's identity, sent as ce_id. Assigned by Prepare (a
	// UUIDv7) when empty; any non-empty string of at most 256 bytes is
	// accepted so that callers may bring their own IDs.
	ID string
	// Type is the CloudEvents type (ce_type), e.g. "onex.agent.action".
	// Default "boltrelay.event".
	Type string
	// Source is the CloudEvents source (ce_source), a URI-reference naming
	// the producer. Default "boltrelay".
	Source string
	// Subject is the optional CloudEvents subject (ce_subject).
	Subject string
	// Time is when the event happened (ce_time). Default: Prepare's now.
	Time time.Time
	// Topic is the Kafka topic the relay delivers to. Required.
	Topic string
	// Key is the Kafka record key; records with one key go to one
	// partition (murmur2, as Kafka's own producer) and keep their order.
	Key []byte
	// ContentType is the media type of Data, sent as content-type.
	ContentType string
	// Data is the record value, delivered unchanged.
	Data []byte
	// Headers are extra Kafka record headers, delivered after the
	// CloudEvents headers and in this order.
	Headers []Header
	// CorrelationID ties the events of one request together; it is sent as
	// the correlation_id header when set.
	CorrelationID string
}

// Header is one extra Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Default envelope values, used by Prepare when a field is empty.
const (
	DefaultType   = "boltrelay.event"
	DefaultSource = "boltrelay"
)

// MaxTopicLen is Kafka's limit on a topic name's length.
const MaxTopicLen = 249

const maxIDLen = 256

// Prepare fills the defaults a stored event needs: an ID, a Time, a Type and
// a Source. It is called by the outbox on every published event; events
// with those fields set are left as they are.
func (e *Event) Prepare(now time.Time) {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Type == "" {
		e.Type = DefaultType
	}
	if e.Source == "" {
		e.Source = DefaultSource
	}
}

// Validate checks the event and returns an error wrapping ErrInvalid (or
// ErrTooLarge) that names the first field that is wrong. maxBytes, when
// positive, bounds the encoded size of the event.
func (e *Event) Validate(maxBytes int) error {
	if err := ValidateTopic(e.Topic); err != nil {
		return err
	}
	if len(e.ID) > maxIDLen {
		return fmt.Errorf("%w: id is %d bytes, limit %d", ErrInvalid, len(e.ID), maxIDLen)
	}
	for _, f := range []struct{ name, v string }{{"type", e.Type}, {"source", e.Source}, {"subject", e.Subject}, {"content type", e.ContentType}, {"id", e.ID}, {"correlation id", e.CorrelationID}} {
		if !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, isControl) {
			return fmt.Errorf("%w: %s %q holds control characters or invalid UTF-8", ErrInvalid, f.name, f.v)
		}
	}
	for _, h := range e.Headers {
		if err := ValidateHeaderName(h.Key); err != nil {
			return err
		}
	}
	if maxBytes > 0 {
		if n := EncodedSize(e); n > maxBytes {
			return fmt.Errorf("%w: event for topic %q is %d bytes, limit %d", ErrTooLarge, e.Topic, n, maxBytes)
		}
	}
	return nil
}

// ValidateTopic checks a Kafka topic name: 1..249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopic(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: topic is empty", ErrInvalid)
	case len(t) > MaxTopicLen:
		return fmt.Errorf("%w: topic is %d characters, Kafka's limit is %d", ErrInvalid, len(t), MaxTopicLen)
	case t == "." || t == "..":
		return fmt.Errorf("%w: topic %q is not allowed", ErrInvalid, t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: topic %q has %q; Kafka allows only letters, digits, '.', '_' and '-'", ErrInvalid, t, r)
		}
	}
	return nil
}

// ValidateHeaderName checks an extra header name: non-empty, printable
// UTF-8, and not one the CloudEvents mapping owns (ce_*, content-type,
// correlation_id).
func ValidateHeaderName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: header name is empty", ErrInvalid)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) || strings.ContainsAny(name, " ="):
		return fmt.Errorf("%w: header name %q holds spaces, '=', control characters or invalid UTF-8", ErrInvalid, name)
	case strings.HasPrefix(strings.ToLower(name), "ce_"), strings.EqualFold(name, "content-type"), strings.EqualFold(name, "correlation_id"):
		return fmt.Errorf("%w: header name %q is reserved for the CloudEvents mapping", ErrInvalid, name)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
