package events

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// idGen keeps the last issued timestamp and counter so that IDs from one
// process are strictly increasing even within one millisecond or when the
// wall clock steps back (RFC 9562, method 1: a 12-bit counter in rand_a).
var idGen struct {
	mu      sync.Mutex
	lastMS  uint64
	counter uint16
}

// NewID returns a new UUIDv7 in its canonical 36-character text form.
func NewID() string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ it
		// aborts the program itself); keep the zero bytes otherwise.
		_ = err
	}
	now := uint64(time.Now().UnixMilli())
	idGen.mu.Lock()
	if now > idGen.lastMS {
		idGen.lastMS = now
		idGen.counter = binary.BigEndian.Uint16(u[6:8]) & 0x01ff // leave headroom
	} else {
		idGen.counter++
		if idGen.counter > 0x0fff {
			idGen.lastMS++ // borrow the next millisecond rather than repeat
			idGen.counter = 0
		}
	}
	ms, ctr := idGen.lastMS, idGen.counter
	idGen.mu.Unlock()

	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = 0x70 | byte(ctr>>8)&0x0f
	u[7] = byte(ctr)
	u[8] = 0x80 | u[8]&0x3f
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseID checks that s is a UUID in canonical text form and returns its 16
// bytes.
func ParseID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%w: id %q is not a UUID", ErrInvalid, s)
	}
	hexPart := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(hexPart)); err != nil {
		return u, fmt.Errorf("%w: id %q is not a UUID", ErrInvalid, s)
	}
	return u, nil
}

// IDTime returns the millisecond timestamp embedded in a UUIDv7 ID.
func IDTime(id string) (time.Time, error) {
	u, err := ParseID(id)
	if err != nil {
		return time.Time{}, err
	}
	if u[6]>>4 != 7 {
		return time.Time{}, fmt.Errorf("%w: id %q is not a UUIDv7", ErrInvalid, id)
	}
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	return time.UnixMilli(ms), nil
}
