package relay

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/internal/kafkatest"
)

// S8: a panic inside the loop must not leave a live process with a dead
// relay: it is recovered, reported, and the loop goes on.
func TestPanicInLoopIsRecovered(t *testing.T) {
	c := kafkatest.Cluster(t, "tp")
	ob := openOutbox(t, t.TempDir())
	var panics atomic.Int32
	r := newRelay(t, ob, c, testHook(func(stage string) {
		if stage == "filled" && panics.Add(1) <= 2 {
			panic("injected")
		}
	}))
	stop := start(r)
	publishN(t, ob, "tp", "k", 20)
	waitFor(t, "delivery after panics", 15*time.Second, func() bool { return ob.Own().Pending() == 0 })
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	h := r.Health()
	if h.Panics != 2 || h.Delivered < 20 {
		t.Fatalf("health %+v: want 2 panics recovered and 20 delivered", h)
	}
}
