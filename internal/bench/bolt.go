package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

var naiveBucket = []byte("pending")

// openNaive opens a fresh bbolt file with bbolt's default options (fsync
// on) and its one bucket.
func openNaive(dir, name string) (*bolt.DB, func(), error) {
	path := filepath.Join(dir, name)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(naiveBucket)
		return err
	}); err != nil {
		_ = db.Close()
		_ = os.Remove(path)
		return nil, nil, err
	}
	return db, func() { _ = db.Close(); _ = os.Remove(path) }, nil
}

// putNext appends val under the bucket's next sequence, as an outbox does.
func putNext(tx *bolt.Tx, val []byte) error {
	b := tx.Bucket(naiveBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], val)
}

// measureBoltUpdate is the naive outbox: one bbolt Update, so one commit
// with its fsyncs, per event, sequential. With pair set, its calls
// alternate with pair's (see runPaired) and pair's series is returned too.
func measureBoltUpdate(ctx context.Context, dir string, c *Config, val []byte, pairName string, pair func(i int) error) (Series, Series, error) {
	db, done, err := openNaive(dir, "update.db")
	if err != nil {
		return Series{}, Series{}, fmt.Errorf("bench: bbolt update: %w", err)
	}
	defer done()
	const name = "bbolt Update per event"
	update := func(int) error {
		return db.Update(func(tx *bolt.Tx) error { return putNext(tx, val) })
	}
	var s, ps Series
	if pair != nil {
		s, ps, err = runPaired(ctx, name, pairName, c.PublishOps, 2*c.PhaseTimeout, update, pair)
	} else {
		s, err = runSeries(ctx, name, c.PublishOps, 1, c.PhaseTimeout, func(_, i int) error { return update(i) })
	}
	if err != nil {
		return s, ps, fmt.Errorf("bench: bbolt update: %w", err)
	}
	return s, ps, nil
}

// measureBoltBatch is bbolt's own group commit, DB.Batch with its default
// MaxBatchDelay (10 ms) and MaxBatchSize (1000), one event per call.
func measureBoltBatch(ctx context.Context, dir string, c *Config, val []byte, conc int) (Series, error) {
	db, done, err := openNaive(dir, fmt.Sprintf("batch-%d.db", conc))
	if err != nil {
		return Series{}, fmt.Errorf("bench: bbolt batch: %w", err)
	}
	defer done()
	s, err := runSeries(ctx, fmt.Sprintf("bbolt Batch c%d", conc), c.PublishOps, conc, c.PhaseTimeout, func(_, _ int) error {
		return db.Batch(func(tx *bolt.Tx) error { return putNext(tx, val) })
	})
	if err != nil {
		return s, fmt.Errorf("bench: bbolt batch c%d: %w", conc, err)
	}
	return s, nil
}
