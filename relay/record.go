package relay

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
)

// CloudEvents 1.0 Kafka protocol binding, binary content mode: attributes
// travel as ce_* headers, the data is the record value unchanged.
const (
	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderType          = "ce_type"
	HeaderSource        = "ce_source"
	HeaderTime          = "ce_time"
	HeaderSubject       = "ce_subject"
	HeaderContentType   = "content-type"
	HeaderCorrelationID = "correlation_id"
	SpecVersion         = "1.0"
)

// ToRecord maps an event to the Kafka record the relay sends for it. The
// event time travels in ce_time; the record's own timestamp is left for
// franz-go to set when it is produced, as any Kafka producer does. Using
// the event time there would let the broker refuse an event from a
// publisher whose clock runs ahead (Kafka 4 rejects timestamps more than an
// hour in the future), and would let retention delete a backlog that
// waited in the outbox longer than retention.ms as soon as it arrives.
func ToRecord(e *events.Event) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, 8+len(e.Headers))
	h = append(h,
		kgo.RecordHeader{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		kgo.RecordHeader{Key: HeaderID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: HeaderType, Value: []byte(e.Type)},
		kgo.RecordHeader{Key: HeaderSource, Value: []byte(e.Source)},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
	)
	if e.Subject != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderSubject, Value: []byte(e.Subject)})
	}
	if e.ContentType != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderContentType, Value: []byte(e.ContentType)})
	}
	if e.CorrelationID != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderCorrelationID, Value: []byte(e.CorrelationID)})
	}
	for _, x := range e.Headers {
		h = append(h, kgo.RecordHeader{Key: x.Key, Value: x.Value})
	}
	return &kgo.Record{Topic: e.Topic, Key: e.Key, Value: e.Data, Headers: h}
}

// HeaderValue returns the value of the first header named key, and whether
// there was one.
func HeaderValue(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func kafkaSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
