package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/boltrelay/boltrelay/events"
)

func benchEvent() *events.Event {
	return &events.Event{Topic: "bench", Key: []byte("key-0001"), Data: make([]byte, 256)}
}

// BenchmarkPublish measures Publish at several concurrencies on the real
// disk (fsync on). ns/op is per event, whatever the concurrency, so the
// ratio to BenchmarkBoltUpdate shows what group commit buys.
func BenchmarkPublish(b *testing.B) {
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("conc-%d", conc), func(b *testing.B) {
			ob, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer ob.Close()
			var wg sync.WaitGroup
			per := b.N / conc
			if per == 0 {
				per = 1
			}
			b.ResetTimer()
			for g := 0; g < conc; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if err := ob.Publish(context.Background(), benchEvent()); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkBoltUpdate is the naive outbox: one bbolt Update (one fsync) per
// event. It is the baseline for BenchmarkPublish.
func BenchmarkBoltUpdate(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "naive.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := events.Marshal(benchEvent())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("p"))
			if err != nil {
				return err
			}
			seq, _ := bk.NextSequence()
			return bk.Put(u64(seq), val)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAck is the relay's storage side of a drain: read a batch,
// acknowledge it in one commit.
func BenchmarkReadAck(b *testing.B) {
	ob, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ob.Close()
	const batch = 512
	evs := make([]*events.Event, batch)
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		for i := range evs {
			evs[i] = benchEvent()
		}
		if err := ob.Publish(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		recs, err := ob.Own().Read(0, batch, 0)
		if err != nil {
			b.Fatal(err)
		}
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := ob.Own().Ack(seqs); err != nil {
			b.Fatal(err)
		}
	}
}
