package events

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// Record format, version 1 (all integers unsigned varints unless noted):
//
//	version byte (1)
//	id, type, source, subject, topic, content type, correlation id: len + bytes
//	time: signed varint, Unix nanoseconds (0 for the zero time)
//	key, data: len+1 + bytes (0 means nil, so nil and empty survive apart)
//	header count, then per header: key len + bytes, value len+1 + bytes
//	crc: 4 bytes big-endian CRC-32C (Castagnoli) of everything before it
//
// A new format gets a new version byte; Unmarshal keeps reading old ones.
const codecVersion1 = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcLen is the size of the CRC-32C trailer.
const crcLen = 4

// EncodedSize returns len(Marshal(e)) without encoding.
func EncodedSize(e *Event) int {
	n := 1 + crcLen
	for _, s := range e.strings() {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	n += varintLen(timeNanos(e.Time))
	n += bytesLen(e.Key) + bytesLen(e.Data)
	n += uvarintLen(uint64(len(e.Headers)))
	for _, h := range e.Headers {
		n += uvarintLen(uint64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
}

// Marshal encodes e in the current record format.
func Marshal(e *Event) []byte {
	return AppendMarshal(make([]byte, 0, EncodedSize(e)), e)
}

// AppendMarshal appends the encoding of e to b.
func AppendMarshal(b []byte, e *Event) []byte {
	start := len(b)
	b = append(b, codecVersion1)
	for _, s := range e.strings() {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, timeNanos(e.Time))
	b = appendBytes(b, e.Key)
	b = appendBytes(b, e.Data)
	b = binary.AppendUvarint(b, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// Unmarshal decodes a record written by Marshal. The returned event does not
// alias b. Any malformed input returns an error wrapping ErrCorrupt.
func Unmarshal(b []byte) (Event, error) {
	var e Event
	if len(b) < 1+crcLen {
		return e, fmt.Errorf("%w: %d bytes is shorter than any record", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-crcLen], binary.BigEndian.Uint32(b[len(b)-crcLen:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return e, fmt.Errorf("%w: crc %08x, stored %08x", ErrCorrupt, got, sum)
	}
	if body[0] != codecVersion1 {
		return e, fmt.Errorf("%w: unknown record version %d", ErrCorrupt, body[0])
	}
	d := newDecoder(body[1:])
	for _, p := range []*string{&e.ID, &e.Type, &e.Source, &e.Subject, &e.Topic, &e.ContentType, &e.CorrelationID} {
		*p = d.string()
	}
	if ns := d.varint(); ns != 0 {
		e.Time = time.Unix(0, ns).UTC()
	}
	e.Key = d.bytes()
	e.Data = d.bytes()
	if n := d.uvarint(); n > 0 {
		// Every header takes at least two bytes, which bounds n by the
		// input before anything is allocated.
		if n > uint64(d.rest())/2 {
			d.fail("header count %d exceeds the record", n)
		} else {
			e.Headers = make([]Header, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				k := d.string()
				e.Headers = append(e.Headers, Header{Key: k, Value: d.bytes()})
			}
		}
	}
	if d.err == nil && d.rest() != 0 {
		d.fail("%d trailing bytes", d.rest())
	}
	if d.err != nil {
		return Event{}, d.err
	}
	return e, nil
}

func (e *Event) strings() [7]string {
	return [7]string{e.ID, e.Type, e.Source, e.Subject, e.Topic, e.ContentType, e.CorrelationID}
}

func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

func bytesLen(v []byte) int {
	if v == nil {
		return 1
	}
	return uvarintLen(uint64(len(v))+1) + len(v)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// decoder reads fields out of one private copy of the record: a []byte
// for the byte fields and the same bytes once as a string for the string
// fields, so a decode costs two allocations however many fields there are,
// and nothing aliases the caller's buffer (bbolt's memory map, say).
type decoder struct {
	buf []byte
	str string
	off int
	err error
}

func newDecoder(b []byte) decoder {
	c := append([]byte(nil), b...)
	return decoder{buf: c, str: string(c)}
}

func (d *decoder) rest() int { return len(d.buf) - d.off }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	d.off = len(d.buf)
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad time")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) take(n uint64) (int, int) {
	if d.err != nil {
		return d.off, d.off
	}
	if n > uint64(d.rest()) {
		d.fail("field of %d bytes exceeds the record", n)
		return d.off, d.off
	}
	a := d.off
	d.off += int(n)
	return a, d.off
}

func (d *decoder) string() string {
	a, b := d.take(d.uvarint())
	return d.str[a:b]
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	a, b := d.take(n - 1)
	if d.err != nil {
		return nil
	}
	return d.buf[a:b:b]
}
