package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runSeries makes ops calls of fn spread over conc goroutines (goroutine g
// makes its share, calls numbered i within it) and times every call. It
// stops early, marking the series truncated, once limit has passed or ctx
// ended; the first error stops every goroutine and is returned.
func runSeries(ctx context.Context, name string, ops, conc int, limit time.Duration, fn func(g, i int) error) (Series, error) {
	conc = max(1, min(conc, ops))
	lats := make([][]time.Duration, conc)
	var (
		stop     atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(limit)
	for g := 0; g < conc; g++ {
		n := ops / conc
		if g < ops%conc {
			n++
		}
		lats[g] = make([]time.Duration, 0, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n && !stop.Load(); i++ {
				t0 := time.Now()
				if t0.After(deadline) || ctx.Err() != nil {
					return
				}
				err := fn(g, i)
				d := time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				lats[g] = append(lats[g], d)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return Series{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Series{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	s := summarize(name, all, wall)
	s.Concurrency = conc
	s.Asked = ops
	s.Truncated = s.Ops < ops
	return s, nil
}

// summarize fills the counts, rate and percentiles of a series of call
// latencies that took wall in all.
func summarize(name string, lats []time.Duration, wall time.Duration) Series {
	s := Series{Name: name, Ops: len(lats), Concurrency: 1, Asked: len(lats), Seconds: round3(wall.Seconds())}
	if len(lats) == 0 {
		return s
	}
	if wall > 0 {
		s.OpsPerSec = round1(float64(len(lats)) / wall.Seconds())
	}
	slices.Sort(lats)
	var sum time.Duration
	for _, d := range lats {
		sum += d
	}
	s.MeanUS = us(sum / time.Duration(len(lats)))
	s.P50US = us(quantile(lats, 0.50))
	s.P90US = us(quantile(lats, 0.90))
	s.P99US = us(quantile(lats, 0.99))
	s.MaxUS = us(lats[len(lats)-1])
	return s
}

// quantile returns the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func us(d time.Duration) float64 { return round1(float64(d) / float64(time.Microsecond)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return round3(a / b)
}

// runPaired makes ops calls of fa and of fb alternately from one goroutine
// (a b, b a, a b, ...), timing each call, so that two sequential series
// whose ratio matters see the same disk and CPU conditions even on a
// machine that is busy with something else. A series' Seconds is the sum
// of its own calls' durations. It stops early (truncated) once limit has
// passed or ctx ended.
func runPaired(ctx context.Context, nameA, nameB string, ops int, limit time.Duration, fa, fb func(i int) error) (Series, Series, error) {
	la := make([]time.Duration, 0, ops)
	lb := make([]time.Duration, 0, ops)
	var sumA, sumB time.Duration
	deadline := time.Now().Add(limit)
	call := func(f func(int) error, i int, lats *[]time.Duration, sum *time.Duration) error {
		t0 := time.Now()
		if err := f(i); err != nil {
			return err
		}
		d := time.Since(t0)
		*lats = append(*lats, d)
		*sum += d
		return nil
	}
	for i := 0; i < ops; i++ {
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		var err error
		if i%2 == 0 {
			if err = call(fa, i, &la, &sumA); err == nil {
				err = call(fb, i, &lb, &sumB)
			}
		} else {
			if err = call(fb, i, &lb, &sumB); err == nil {
				err = call(fa, i, &la, &sumA)
			}
		}
		if err != nil {
			return Series{}, Series{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Series{}, Series{}, err
	}
	sa, sb := summarize(nameA, la, sumA), summarize(nameB, lb, sumB)
	sa.Asked, sb.Asked = ops, ops
	sa.Truncated, sb.Truncated = sa.Ops < ops, sb.Ops < ops
	return sa, sb, nil
}
