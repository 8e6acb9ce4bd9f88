package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
)

// probeTopic is the topic of events published only to be timed; nothing
// relays them.
const probeTopic = "boltrelay-bench-probe"

// measurePublish times the bbolt Update baseline and, when 1 is among the
// levels, outbox.Publish at concurrency 1 paired with it (see runPaired):
// their ratio is a target, and the pairing keeps it honest on a busy
// machine. Every Publish level is measured in a fresh outbox with default
// options, one event per call.
func measurePublish(ctx context.Context, root string, c *Config, g *gen, val []byte) (Series, []Series, error) {
	var update Series
	var out []Series
	probe := func(i int) *events.Event { return g.event(i, probeTopic) }
	if slices.Contains(c.Concurrency, 1) {
		dir := filepath.Join(root, "publish-c1")
		ob, err := outbox.Open(dir)
		if err != nil {
			return update, nil, fmt.Errorf("bench: publish c1: %w", err)
		}
		var c1 Series
		update, c1, err = measureBoltUpdate(ctx, root, c, val, "publish c1", func(i int) error { return ob.Publish(ctx, probe(i)) })
		if cerr := ob.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench: publish c1: %w", cerr)
		}
		_ = os.RemoveAll(dir)
		if err != nil {
			return update, nil, err
		}
		out = append(out, c1)
	} else {
		var err error
		if update, _, err = measureBoltUpdate(ctx, root, c, val, "", nil); err != nil {
			return update, nil, err
		}
	}
	return update, out, nil
}

// measureLevels times Publish at every concurrency level but 1 (which
// measurePublish pairs with the Update baseline).
func measureLevels(ctx context.Context, root string, c *Config, g *gen, prof *profiler) ([]Series, error) {
	var out []Series
	probe := func(i int) *events.Event { return g.event(i, probeTopic) }
	stop := prof.start("publish")
	defer stop()
	for _, conc := range c.Concurrency {
		if conc == 1 {
			continue
		}
		dir := filepath.Join(root, fmt.Sprintf("publish-c%d", conc))
		s, err := publishSingles(ctx, c, dir, fmt.Sprintf("publish c%d", conc), conc, c.PublishOps, probe)
		_ = os.RemoveAll(dir)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// sortLevels puts Publish series in the order of c.Concurrency.
func sortLevels(c *Config, ss []Series) {
	slices.SortStableFunc(ss, func(a, b Series) int {
		return slices.Index(c.Concurrency, a.Concurrency) - slices.Index(c.Concurrency, b.Concurrency)
	})
}

// publishSingles opens a writer on dir (a fresh segment of its own), times
// ops Publish calls of one event each from conc goroutines, and closes it.
// It returns the path of the writer's segment (still on disk when it holds
// events). ev(i) makes the event of call i (numbered over all goroutines).
func publishSingles(ctx context.Context, c *Config, dir, name string, conc, ops int, ev func(i int) *events.Event) (Series, error) {
	ob, err := outbox.Open(dir)
	if err != nil {
		return Series{}, fmt.Errorf("bench: %s: %w", name, err)
	}
	per := (ops + conc - 1) / conc
	s, err := runSeries(ctx, name, ops, conc, c.PhaseTimeout, func(gi, i int) error {
		return ob.Publish(ctx, ev(gi*per+i))
	})
	if cerr := ob.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return s, fmt.Errorf("bench: %s: %w", name, err)
	}
	return s, nil
}
