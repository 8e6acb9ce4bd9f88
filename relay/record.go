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
	// All header values share one buffer: one allocation, not one each.
	n := len(SpecVersion) + len(e.ID) + len(e.Type) + len(e.Source) + len(time.RFC3339Nano) + 6 +
		len(e.Subject) + len(e.ContentType) + len(e.CorrelationID)
	buf := make([]byte, 0, n)
	h := make([]kgo.RecordHeader, 0, 8+len(e.Headers))
	add := func(key string, v string) {
		start := len(buf)
		buf = append(buf, v...)
		h = append(h, kgo.RecordHeader{Key: key, Value: buf[start:len(buf):len(buf)]})
	}
	add(HeaderSpecVersion, SpecVersion)
	add(HeaderID, e.ID)
	add(HeaderType, e.Type)
	add(HeaderSource, e.Source)
	start := len(buf)
	buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
	h = append(h, kgo.RecordHeader{Key: HeaderTime, Value: buf[start:len(buf):len(buf)]})
	if e.Subject != "" {
		add(HeaderSubject, e.Subject)
	}
	if e.ContentType != "" {
		add(HeaderContentType, e.ContentType)
	}
	if e.CorrelationID != "" {
		add(HeaderCorrelationID, e.CorrelationID)
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
