package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the result as aligned tables for people: one line per
// measurement, then the targets with met or missed. The JSON form (the
// Result itself) is for programs.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	e := r.Env
	p("boltrelay bench: %s, %s/%s, %d CPUs, broker %s, %s (%.0fs)", e.Dir, e.GOOS, e.GOARCH, e.NumCPU, brokerDesc(e), e.GoVersion, r.DurationSeconds)
	if ls, le := e.LoadStart, e.LoadEnd; ls != (Load{}) || le != (Load{}) {
		p("machine load start/end: load avg %.2f/%.2f, cpu pressure %.1f%%/%.1f%%, io pressure %.1f%%/%.1f%% (some, avg60)",
			ls.LoadAvg1, le.LoadAvg1, ls.CPUSomeAvg60, le.CPUSomeAvg60, ls.IOSomeAvg60, le.IOSomeAvg60)
	}
	p("events %d × %d-byte values (%d-byte stored records), %d partitions, %d keys", r.Config.Events, r.Config.ValueSize, r.Config.RecordBytes, r.Config.Partitions, r.Config.Keys)
	p("")
	p("LATENCY SERIES\tCONC\tCALLS\tCALLS/S\tMEAN\tP50\tP90\tP99\tMAX")
	for _, s := range r.allSeries() {
		if s.Name == "" {
			continue
		}
		calls := fmt.Sprint(s.Ops)
		if s.Truncated {
			calls += "*"
		}
		p("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Name, s.Concurrency, calls, fmtRate(s.OpsPerSec),
			fmtUS(s.MeanUS), fmtUS(s.P50US), fmtUS(s.P90US), fmtUS(s.P99US), fmtUS(s.MaxUS))
	}
	p("")
	d := r.Drain
	p("THROUGHPUT\tEVENTS\tSECONDS\tEVENTS/S\tNOTE")
	if d.Events > 0 {
		p("backlog build (Publish × %d)\t%d\t%.2f\t%s\tno relay; fsync per call", r.Config.BatchSize, d.Events-r.Pending.Own.Ops, d.BuildSeconds, fmtRate(d.BuildEventsPerSec))
	}
	if d.Relay.Events > 0 {
		p("relay drain (relay.Once)\t%d\t%.2f\t%s\tbroker holds %d", d.Relay.Events, d.Relay.Seconds, fmtRate(d.Relay.EventsPerSec), d.Relay.BrokerRecords)
	}
	if d.Direct.Events > 0 {
		p("franz-go direct produce\t%d\t%.2f\t%s\tbroker holds %d", d.Direct.Events, d.Direct.Seconds, fmtRate(d.Direct.EventsPerSec), d.Direct.BrokerRecords)
		p("relay / direct\t\t\t%.3f", d.Ratio)
	}
	if d.Relay.Events > 0 {
		p("backlog on disk, before / after drain\t\t\t\t%s / %s (pending records %s)", fmtBytes(d.DiskBytesBefore), fmtBytes(d.DiskBytesAfter), fmtBytes(d.PendingBytes))
	}
	p("")
	if pd := r.Pending; pd.Own.Ops > 0 || pd.Sealed.Ops > 0 {
		p("PUBLISH C1 WITH BACKLOG\tPENDING\tP50\tP99\tEMPTY OUTBOX P50\tEMPTY OUTBOX P99\tP99 RATIO")
		p("backlog in own segment\t%d\t%s\t%s\t%s\t%s\t%.3f", pd.BacklogEvents, fmtUS(pd.Own.P50US), fmtUS(pd.Own.P99US), fmtUS(pd.NoneOwn.P50US), fmtUS(pd.NoneOwn.P99US), pd.OwnP99Ratio)
		p("backlog sealed beside\t%d\t%s\t%s\t%s\t%s\t%.3f", pd.BacklogEvents, fmtUS(pd.Sealed.P50US), fmtUS(pd.Sealed.P99US), fmtUS(pd.None.P50US), fmtUS(pd.None.P99US), pd.SealedP99Ratio)
		p("")
	}
	if x := r.E2E; x.Published > 0 {
		p("END TO END\tRATE\tACHIEVED\tEVENTS\tACKED\tP50\tP90\tP99\tMAX\tP99 FROM SCHEDULE\tPUBLISH P99")
		p("publish -> broker ack\t%d/s\t%s/s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s", x.TargetRate, fmtRate(x.AchievedRate), x.Published, x.Acked,
			fmtUS(x.P50US), fmtUS(x.P90US), fmtUS(x.P99US), fmtUS(x.MaxUS), fmtUS(x.ScheduleP99US), fmtUS(x.PublishP99US))
		p("")
	}
	p("RELAY PROCESS\tEVENTS\tSECONDS\tPEAK RSS\tPEAK ANON\tPEAK FILE\tSEGMENT FILE")
	if x := r.RSS; x.Skipped {
		p("relay run --once\tskipped: %s", x.Reason)
	} else if x.Events > 0 {
		p("relay run --once\t%d\t%.2f\t%s\t%s\t%s\t%s", x.Events, x.Seconds, fmtBytes(x.PeakRSSBytes), fmtBytes(x.PeakAnonBytes), fmtBytes(x.PeakFileBytes), fmtBytes(x.SegmentFileBytes))
	}
	p("")
	p("TARGET\tMEASURED\tLIMIT\tRESULT\tGOAL")
	for _, t := range r.Targets {
		verdict := "met"
		switch {
		case t.Skipped:
			verdict = "skipped"
		case !t.Met:
			verdict = "MISSED"
		}
		val := "-"
		if !t.Skipped {
			val = fmt.Sprintf("%s %s", fmtNum(t.Value), t.Unit)
		}
		p("%s\t%s\t%s %s %s\t%s\t%s", t.Name, val, t.Op, fmtNum(t.Limit), t.Unit, verdict, t.Goal)
	}
	if len(r.Notes) > 0 {
		p("")
		for _, n := range r.Notes {
			p("note: %s", n)
		}
	}
	return tw.Flush()
}

func brokerDesc(e Env) string {
	if e.Broker == "external" {
		return strings.Join(e.Brokers, ",")
	}
	return "kfake (embedded, same process)"
}

func fmtUS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 1e6:
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.2fs", v/1e6)
}

func fmtRate(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtNum(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
