package relay

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// connHook tracks broker reachability for Health and logs dial failures at
// a bounded pace (franz-go redials with its own backoff).
type connHook struct {
	r     *Relay
	pacer logPacer
}

var _ kgo.HookBrokerConnect = (*connHook)(nil)

func (c *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		c.r.setHealth(func(h *Health) { h.Healthy = true })
		return
	}
	now := time.Now()
	c.r.setHealth(func(h *Health) { h.Healthy = false; h.LastError = err.Error(); h.ErrorAt = now })
	if c.pacer.allow("dial", now, c.r.cfg.backoffMax) {
		c.r.cfg.logger.Warn("relay: broker unreachable; events stay pending", "broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), "error", err)
	}
}

// logPacer lets one log line per key through per interval, so an outage
// costs a few log lines, not one per record, per redial or per
// millisecond. Safe for concurrent use (the connect hook runs on
// franz-go's goroutines).
type logPacer struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (p *logPacer) allow(key string, now time.Time, every time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.last[key]; ok && now.Sub(t) < every {
		return false
	}
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	p.last[key] = now
	return true
}
