package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
)

// A writer publishes durably; a relay (here the same process) claims the
// segments, reads the events in order, and acknowledges what the broker
// took.
func Example() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ob, err := outbox.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	e1 := &events.Event{Topic: "orders", Key: []byte("order-1"), Data: []byte(`{"n":1}`)}
	e2 := &events.Event{Topic: "orders", Key: []byte("order-2"), Data: []byte(`{"n":2}`)}
	// Publish returns once both events are on disk.
	if err := ob.Publish(ctx, e1, e2); err != nil {
		log.Fatal(err)
	}
	fmt.Println("IDs assigned:", e1.ID != "" && e2.ID != "")

	segs, _, err := ob.Claim()
	if err != nil {
		log.Fatal(err)
	}
	var acked []uint64
	for _, s := range segs {
		recs, err := s.Read(0, 100, 0)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range recs {
			fmt.Println(r.Seq, r.Event.Topic, string(r.Event.Key), string(r.Event.Data), r.Event.ID == e1.ID)
			acked = append(acked, r.Seq)
		}
		st, _ := ob.Stats()
		fmt.Println("pending:", st.Pending)
		if err := s.Ack(acked); err != nil {
			log.Fatal(err)
		}
	}
	st, _ := ob.Stats()
	fmt.Println("pending after ack:", st.Pending)
	if err := ob.Close(); err != nil {
		log.Fatal(err)
	}
	left, _ := os.ReadDir(dir)
	fmt.Println("files left:", len(left))
	// Output:
	// IDs assigned: true
	// 1 orders order-1 {"n":1} true
	// 2 orders order-2 {"n":2} false
	// pending: 2
	// pending after ack: 0
	// files left: 0
}

// Dump reads the directory without writing to it: here the event a writer
// left pending when it closed.
func ExampleDump() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ob, err := outbox.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := ob.Publish(context.Background(), &events.Event{Topic: "audit", Data: []byte("login")}); err != nil {
		log.Fatal(err)
	}
	if err := ob.Close(); err != nil { // sealed, the event still pending
		log.Fatal(err)
	}
	skipped, err := outbox.Dump(dir, outbox.DumpOptions{Pending: true}, func(r outbox.Record) error {
		fmt.Println(r.Seq, r.Event.Topic, string(r.Event.Data), r.Dead)
		return nil
	})
	fmt.Println(len(skipped), err)
	st, err := outbox.ReadStats(dir)
	fmt.Println(st.Pending, st.Segments, err)
	// Output:
	// 1 audit login false
	// 0 <nil>
	// 1 1 <nil>
}
