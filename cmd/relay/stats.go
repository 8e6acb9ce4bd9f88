package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/outbox"
)

type statsOpts struct {
	outbox      string
	format      string
	lockTimeout time.Duration
}

func newStatsCmd(e *env) *cobra.Command {
	var o statsOpts
	cmd := &cobra.Command{
		Use:   "stats --outbox DIR [flags]",
		Short: "Summarise an outbox: pending, parked, disk use, failing topics",
		Long: `Summarise an outbox: events pending and parked, the oldest pending one, segment
files and their disk use, and topics whose events failed to deliver.

--format json prints one object: pending, pending_bytes, dead,
oldest_pending (RFC 3339 or null), segments, live_segments, disk_bytes,
live_bytes, held [{segment, pid, size}], damaged [{segment, error}], failing
[{topic, events, attempts, last_error}].

stats never modifies a file. Segments locked by another process (a live
writer or a running relay) are listed as held and their events are not
counted; damaged segments are listed and named on stderr (exit 1).`,
		Example: `  relay stats --outbox /var/lib/relay
  relay stats --outbox /var/lib/relay --format json | jq .pending`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStats(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addOutboxFlag(fs, &o.outbox)
	fs.StringVar(&o.format, "format", "table", "output format: table or json")
	addLockTimeoutFlag(fs, &o.lockTimeout, "listing it as held")
	return cmd
}

type statsJSON struct {
	Pending       int64         `json:"pending"`
	PendingBytes  int64         `json:"pending_bytes"`
	Dead          int64         `json:"dead"`
	OldestPending *string       `json:"oldest_pending"`
	Segments      int           `json:"segments"`
	LiveSegments  int           `json:"live_segments"`
	DiskBytes     int64         `json:"disk_bytes"`
	LiveBytes     int64         `json:"live_bytes"`
	Held          []heldJSON    `json:"held"`
	Damaged       []damagedJSON `json:"damaged"`
	Failing       []failingJSON `json:"failing"`
}

type heldJSON struct {
	Segment string `json:"segment"`
	PID     int    `json:"pid"`
	Size    int64  `json:"size"`
}

type damagedJSON struct {
	Segment string `json:"segment"`
	Error   string `json:"error"`
}

type failingJSON struct {
	Topic     string `json:"topic"`
	Events    int64  `json:"events"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

func runStats(cmd *cobra.Command, e *env, o *statsOpts) error {
	fs := cmd.Flags()
	if err := required(fs, "outbox", o.outbox); err != nil {
		return err
	}
	if err := checkFormat(o.format); err != nil {
		return err
	}
	if err := checkLockTimeout(o.lockTimeout); err != nil {
		return err
	}
	if err := checkOutbox(o.outbox, true); err != nil {
		return err
	}
	st, err := outbox.ReadStats(o.outbox, outbox.LockTimeout(o.lockTimeout))
	if err != nil {
		return failf("stats %s: %w", o.outbox, err)
	}
	out := bufio.NewWriter(e.stdout)
	if o.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		err = enc.Encode(toStatsJSON(&st))
	} else {
		err = statsTable(out, &st, time.Now())
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return failf("write stats: %w", err)
	}
	if reportSkipped(e.stderr, o.outbox, st.Damaged, "not counted") > 0 {
		return errSilent
	}
	return nil
}

func toStatsJSON(st *outbox.Stats) *statsJSON {
	j := &statsJSON{
		Pending: st.Pending, PendingBytes: st.PendingBytes, Dead: st.Dead,
		Segments: st.Segments, LiveSegments: st.LiveSegments,
		DiskBytes: st.DiskBytes, LiveBytes: st.LiveBytes,
		Held: []heldJSON{}, Damaged: []damagedJSON{}, Failing: []failingJSON{},
	}
	if !st.OldestPending.IsZero() {
		s := st.OldestPending.UTC().Format(time.RFC3339Nano)
		j.OldestPending = &s
	}
	for _, h := range st.Held {
		j.Held = append(j.Held, heldJSON{Segment: h.Name, PID: h.PID, Size: h.Size})
	}
	for _, d := range st.Damaged {
		j.Damaged = append(j.Damaged, damagedJSON{Segment: d.Name, Error: segmentReason(d.Err)})
	}
	for _, f := range st.Failing {
		j.Failing = append(j.Failing, failingJSON{Topic: f.Topic, Events: f.Events, Attempts: f.MaxAttempts, LastError: oneLine(f.LastError)})
	}
	return j
}

func statsTable(out *bufio.Writer, st *outbox.Stats, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "pending\t%s (%s)\n", plural(st.Pending, "event", "events"), humanBytes(st.PendingBytes))
	fmt.Fprintf(tw, "dead\t%s\n", plural(st.Dead, "event", "events"))
	oldest := "-"
	if !st.OldestPending.IsZero() {
		oldest = fmt.Sprintf("%s (%s ago)", st.OldestPending.UTC().Format(time.RFC3339), now.Sub(st.OldestPending).Round(time.Second))
	}
	fmt.Fprintf(tw, "oldest pending\t%s\n", oldest)
	fmt.Fprintf(tw, "segments\t%d (%d live)\n", st.Segments, st.LiveSegments)
	fmt.Fprintf(tw, "disk\t%s (%s in use)\n", humanBytes(st.DiskBytes), humanBytes(st.LiveBytes))
	for _, h := range st.Held {
		fmt.Fprintf(tw, "held\t%s (written by pid %d, %s; not counted)\n", h.Name, h.PID, humanBytes(h.Size))
	}
	for _, d := range st.Damaged {
		fmt.Fprintf(tw, "damaged\t%s: %s\n", d.Name, segmentReason(d.Err))
	}
	for _, f := range st.Failing {
		fmt.Fprintf(tw, "failing\ttopic %q: %s, %s, last error: %s\n",
			f.Topic, plural(f.Events, "event", "events"), plural(int64(f.MaxAttempts), "attempt", "attempts"), cell(f.LastError, 120))
	}
	return tw.Flush()
}

// humanBytes renders a size for people: 512 B, 3.4 KiB, 12.0 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
