package relay_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

// The embedding pattern of the README, against an in-process broker:
// publish with the relay running, stop it, close the outbox last.
func Example() {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.TopicAgentAction))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	ob, err := outbox.Open(dir)
	if err != nil {
		panic(err)
	}
	r, err := relay.New(ob, relay.Brokers(cluster.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()

	ev, err := events.NewActionEvent(events.ActionEvent{
		AgentName: "coder", ActionType: events.ActionToolCall, ActionName: "Read",
		CorrelationID: "req-1",
	})
	if err != nil {
		panic(err)
	}
	if err := ob.Publish(ctx, &ev); err != nil {
		panic(err)
	}
	for i := 0; i < 500 && r.Health().Delivered < 1; i++ {
		time.Sleep(10 * time.Millisecond)
	}

	stop()
	wg.Wait()
	fmt.Println("delivered:", r.Health().Delivered, "close:", ob.Close())
	// Output: delivered: 1 close: <nil>
}
