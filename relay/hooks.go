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
	r       *Relay
	mu      sync.Mutex
	lastLog time.Time
}

var _ kgo.HookBrokerConnect = (*connHook)(nil)

func (c *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		c.r.setHealth(func(h *Health) { h.Healthy = true })
		return
	}
	now := time.Now()
	c.r.setHealth(func(h *Health) { h.Healthy = false; h.LastError = err.Error(); h.ErrorAt = now })
	c.mu.Lock()
	log := now.Sub(c.lastLog) >= c.r.cfg.backoffMax
	if log {
		c.lastLog = now
	}
	c.mu.Unlock()
	if log {
		c.r.cfg.logger.Warn("relay: broker unreachable; events stay pending", "broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), "error", err)
	}
}
