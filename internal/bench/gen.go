package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

// benchSource is the ce_source of every event the bench publishes.
const benchSource = "boltrelay-bench"

// nValues distinct values are cycled through: enough that records differ,
// few enough that generating an event costs no more than a slice header.
const nValues = 1024

// gen makes the bench's events deterministically from their index, so
// the relay's backlog and franz-go's direct produce carry the same
// records (same ID, time, key, value and headers) without holding a
// million of them in memory.
type gen struct {
	idPrefix string // the first 24 characters of a UUIDv7; the last 12 hex digits are the index
	t0       time.Time
	keys     [][]byte
	values   [][]byte
}

func newGen(keys, valueSize int, seed uint64) *gen {
	g := &gen{t0: time.Now().UTC().Truncate(time.Millisecond)}
	id := events.NewID() // 8-4-4-4-12
	g.idPrefix = id[:24]
	g.keys = make([][]byte, keys)
	for i := range g.keys {
		g.keys[i] = fmt.Appendf(nil, "corr-%06d", i)
	}
	// Random-ish but compressible: words from a small vocabulary with
	// random digits, like the JSON the agents send (about 2:1 with
	// snappy/zstd).
	words := []string{"agent", "tool_call", "Read", "Write", "Bash", "decision", "success", "path", "/src/", "main.go",
		"duration_ms", "project", "session", "\":\"", "\",\"", "{\"", "}", " ", "select_agent", "params"}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g.values = make([][]byte, nValues)
	for i := range g.values {
		v := make([]byte, 0, valueSize+16)
		for len(v) < valueSize {
			if r.IntN(3) == 0 {
				v = fmt.Appendf(v, "%d", r.IntN(100000))
			} else {
				v = append(v, words[r.IntN(len(words))]...)
			}
		}
		g.values[i] = v[:valueSize:valueSize]
	}
	return g
}

// id returns event i's ID: a UUIDv7 whose last 48 bits are the index.
// (Cheap: the direct produce makes one per record inside its timing.)
func (g *gen) id(i int) string {
	const hexDigits = "0123456789abcdef"
	var b [36]byte
	n := copy(b[:], g.idPrefix)
	v := uint64(i) & 0xffffffffffff
	for j := 35; j >= n; j-- {
		b[j] = hexDigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// keyIndex spreads indices over the keys (a multiplicative hash, so
// neighbours differ).
func (g *gen) keyIndex(i int) int { return int((uint64(i) * 2654435761) % uint64(len(g.keys))) }

// event returns event i for topic, fully prepared (Publish changes
// nothing in it).
func (g *gen) event(i int, topic string) *events.Event {
	return &events.Event{
		ID:          g.id(i),
		Type:        events.TypeAgentAction,
		Source:      benchSource,
		Time:        g.t0.Add(time.Duration(i) * time.Microsecond),
		Topic:       topic,
		Key:         g.keys[g.keyIndex(i)],
		ContentType: events.ContentTypeJSON,
		Data:        g.values[i%nValues],
	}
}
