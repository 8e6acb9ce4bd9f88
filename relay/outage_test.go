package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// persistentCluster starts kfake on a fixed port with its data on disk, so
// that it can be stopped and started again like a real broker.
func persistentCluster(t *testing.T, port int, dataDir string, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatalf("kfake on port %d: %v", port, err)
	}
	return c
}

// S11 / S8: a broker stopped for a while (connection refused throughout)
// parks nothing and loses nothing; the relay keeps running, reports itself
// unhealthy, logs at backoff pace, and drains soon after recovery.
func TestBrokerOutageParksNothing(t *testing.T) {
	outage := 20 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	port := freePort(t)
	kdir := t.TempDir()
	c := persistentCluster(t, port, kdir, "t8")
	dir := t.TempDir()
	ob := openOutbox(t, dir)
	logs := &countingHandler{}
	r := newRelay(t, ob, c, Logger(newLogger(logs)), Backoff(50*time.Millisecond, 2*time.Second))
	stop := start(r)
	defer func() { _, _ = stop() }()

	var ids []string
	publish := func() {
		e := &events.Event{Topic: "t8", Key: []byte("k"), Data: []byte(fmt.Sprint(len(ids)))}
		if err := ob.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	for i := 0; i < 10; i++ {
		publish()
	}
	waitFor(t, "first deliveries", 10*time.Second, func() bool { return r.Health().Delivered == 10 })

	c.Close()
	outageStart := time.Now()
	logsBefore := logs.n.Load()
	sawUnhealthy := false
	for time.Since(outageStart) < outage {
		publish()
		time.Sleep(100 * time.Millisecond)
		if !r.Health().Healthy {
			sawUnhealthy = true
		}
	}
	if !r.Health().Running {
		t.Fatal("relay stopped during the outage")
	}
	if !sawUnhealthy {
		t.Error("relay never reported itself unhealthy while the broker was down")
	}
	if n := logs.n.Load() - logsBefore; n > int64(outage/time.Second)*4+10 {
		t.Errorf("%d log lines in a %v outage: not at backoff pace", n, outage)
	}
	c2 := persistentCluster(t, port, kdir, "t8")
	defer c2.Close()
	recovered := time.Now()
	waitFor(t, "drain after recovery", 10*time.Second, func() bool { return ob.Own().Pending() == 0 })
	t.Logf("outage %v, %d events, drained %v after recovery", outage, len(ids), time.Since(recovered))
	st, err := ob.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead != 0 {
		t.Fatalf("%d events parked during an outage", st.Dead)
	}
	got := idCounts(kafkatest.Consume(t, c2.ListenAddrs(), len(ids), 10*time.Second, "t8"))
	for _, id := range ids {
		if got[id] == 0 {
			t.Fatalf("event %s lost in the outage", id)
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// S7: start and stop an embedded relay many times, some stops in the middle
// of a produce; nothing may accumulate.
func TestStartStopLeaksNothing(t *testing.T) {
	c := kafkatest.Cluster(t, "t7")
	dir := t.TempDir()
	warm := openOutbox(t, t.TempDir())
	_ = warm
	baseG, baseFD := 0, 0
	for i := 0; i < 50; i++ {
		ob, err := outbox.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		r := newRelay(t, ob, c, DrainTimeout(200*time.Millisecond))
		stop := start(r)
		publishN(t, ob, "t7", "k", 1+i%5)
		if i%2 == 0 {
			time.Sleep(time.Duration(i%7) * time.Millisecond) // stop mid-produce
		} else {
			waitFor(t, "delivery", 5*time.Second, func() bool { return ob.Own().Pending() == 0 })
		}
		_, _ = stop()
		seg := ob.Own().Path()
		if err := ob.Close(); err != nil {
			t.Fatal(err)
		}
		// The lock is released at once: another handle can claim it now.
		if _, err := os.Stat(seg); err == nil {
			o2, err := outbox.Open(dir, outbox.WithoutWriter())
			if err != nil {
				t.Fatal(err)
			}
			_, others, err := o2.Claim()
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range others {
				if o.State == outbox.StateHeld && o.Name == filepath.Base(seg) {
					t.Fatalf("segment %s still locked after Close", o.Name)
				}
			}
			_ = o2.Close()
		}
		if i == 4 {
			runtime.GC()
			baseG, baseFD = runtime.NumGoroutine(), openFDs(t)
		}
	}
	var g, fd int
	for try := 0; try < 100; try++ { // let closed connections finish closing
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if g <= baseG+2 && fd <= baseFD+2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if g > baseG+2 || fd > baseFD+2 {
		t.Fatalf("after 50 runs: goroutines %d (base %d), fds %d (base %d)", g, baseG, fd, baseFD)
	}
	// No TCP connection to the broker is left.
	if n := connsTo(t, c.ListenAddrs()[0]); n > 0 {
		t.Fatalf("%d TCP connections to the broker left open", n)
	}
}

// connsTo counts this process's established TCP connections to addr, read
// from /proc/net/tcp (both directions appear: ours are those whose remote
// end is the broker).
func connsTo(t *testing.T, addr string) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp")
	}
	_, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	want := fmt.Sprintf("0100007F:%04X", p)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == want && f[3] == "01" {
			n++
		}
	}
	return n
}
