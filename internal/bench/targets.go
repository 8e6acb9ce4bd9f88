package bench

import "fmt"

// The targets.
const (
	targetC1P50Ratio      = 1.3  // Publish c1 p50 <= 1.3 × bbolt Update p50
	targetC64OverUpdate   = 20   // Publish c64 throughput >= 20 × Update per event
	targetC64OverBatch    = 10   // Publish c64 throughput >= 10 × DB.Batch c64
	targetC64P99MS        = 5    // Publish c64 p99 <= 5 ms
	targetDrainRatio      = 0.6  // relay drain >= 60% of franz-go direct
	targetE2EP99MS        = 10   // end-to-end p99 <= 10 ms at 5,000 events/s
	targetE2ERate         = 5000 // ... at this rate
	targetE2ERateShare    = 0.95 // achieved rate counts as "at" the target above this share
	targetRSSMiB          = 64   // relay RSS <= 64 MiB while draining 1,000,000 events
	targetPendingP99Ratio = 1.5  // Publish p99 with the backlog pending <= 1.5 × with none
)

func (r *Result) findPublish(conc int) (Series, bool) {
	for _, s := range r.Publish {
		if s.Concurrency == conc && s.Ops > 0 {
			return s, true
		}
	}
	return Series{}, false
}

func (r *Result) findBatch(conc int) (Series, bool) {
	for _, s := range r.BoltBatch {
		if s.Concurrency == conc && s.Ops > 0 {
			return s, true
		}
	}
	return Series{}, false
}

// computeRatios fills r.Ratios from the series measured.
func (r *Result) computeRatios() {
	if c1, ok := r.findPublish(1); ok {
		r.Ratios.C1P50OverUpdateP50 = ratio(c1.P50US, r.BoltUpdate.P50US)
	}
	if c64, ok := r.findPublish(batchHighConcurrency); ok {
		r.Ratios.C64OverUpdateThroughput = ratio(c64.OpsPerSec, r.BoltUpdate.OpsPerSec)
		if b, ok := r.findBatch(batchHighConcurrency); ok {
			r.Ratios.C64OverBatchC64Throughput = ratio(c64.OpsPerSec, b.OpsPerSec)
		}
	}
}

// evaluate fills r.Targets from the figures measured.
func (r *Result) evaluate() {
	r.Targets = nil
	add := func(name, goal string, have bool, value float64, op string, limit float64, unit string) {
		t := Target{Name: name, Goal: goal, Value: value, Op: op, Limit: limit, Unit: unit, Skipped: !have}
		if have {
			if op == "<=" {
				t.Met = value <= limit
			} else {
				t.Met = value >= limit
			}
			if limit != 0 {
				t.Margin = round3(value / limit)
			}
		}
		r.Targets = append(r.Targets, t)
	}
	c64, haveC64 := r.findPublish(batchHighConcurrency)
	_, haveC1 := r.findPublish(1)
	add("publish_c1_p50", "Publish at concurrency 1: p50 ≤ 1.3 × one bbolt Update commit",
		haveC1 && r.BoltUpdate.Ops > 0, r.Ratios.C1P50OverUpdateP50, "<=", targetC1P50Ratio, "× Update p50")
	add("publish_c64_vs_update", "Publish at concurrency 64: ≥ 20 × the Update-per-event throughput",
		haveC64 && r.BoltUpdate.Ops > 0, r.Ratios.C64OverUpdateThroughput, ">=", targetC64OverUpdate, "× Update")
	_, haveB64 := r.findBatch(batchHighConcurrency)
	add("publish_c64_vs_batch", "Publish at concurrency 64: ≥ 10 × DB.Batch at 64",
		haveC64 && haveB64, r.Ratios.C64OverBatchC64Throughput, ">=", targetC64OverBatch, "× Batch c64")
	add("publish_c64_p99", "Publish at concurrency 64: p99 ≤ 5 ms",
		haveC64, round3(c64.P99US/1000), "<=", targetC64P99MS, "ms")
	add("drain_ratio", "Relay drain ≥ 60% of franz-go's direct produce rate to the same broker",
		r.Drain.Relay.Events > 0 && r.Drain.Direct.Events > 0, r.Drain.Ratio, ">=", targetDrainRatio, "× direct")
	e := r.E2E
	e2eGoal := fmt.Sprintf("End to end: p99 ≤ 10 ms at 5,000 events/s (run at %d/s, achieved %.0f/s)", e.TargetRate, e.AchievedRate)
	atRate := e.TargetRate >= targetE2ERate && e.AchievedRate >= targetE2ERateShare*float64(targetE2ERate)
	add("e2e_p99", e2eGoal, e.Acked > 0, round3(e.P99US/1000), "<=", targetE2EP99MS, "ms")
	if t := &r.Targets[len(r.Targets)-1]; !t.Skipped && !atRate {
		t.Met = false // not measured at the target's rate
	}
	add("relay_rss", fmt.Sprintf("Relay RSS ≤ 64 MiB while draining 1,000,000 events (drained %d; VmHWM, mmapped segment pages included)", r.RSS.Events),
		!r.RSS.Skipped && r.RSS.PeakRSSBytes > 0, round1(float64(r.RSS.PeakRSSBytes)/(1<<20)), "<=", targetRSSMiB, "MiB")
	add("pending_p99_sealed", fmt.Sprintf("Publish p99 with %d pending (sealed segment, same directory) ≤ 1.5 × with none", r.Pending.BacklogEvents),
		r.Pending.Sealed.Ops > 0 && r.Pending.None.Ops > 0, r.Pending.SealedP99Ratio, "<=", targetPendingP99Ratio, "× none")
	add("pending_p99_own", fmt.Sprintf("Publish p99 with %d pending (in the writer's own segment) ≤ 1.5 × with none", r.Pending.BacklogEvents),
		r.Pending.Own.Ops > 0 && r.Pending.None.Ops > 0, r.Pending.OwnP99Ratio, "<=", targetPendingP99Ratio, "× none")
	add("disk_given_back", "After the drain the disk space is given back (backlog files left, bytes)",
		r.Drain.Relay.Events > 0, float64(r.Drain.DiskBytesAfter), "<=", 0, "bytes")
}
