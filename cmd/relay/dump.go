package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
)

type dumpOpts struct {
	outbox      string
	format      string
	dead        bool
	pending     bool
	limit       int
	lockTimeout time.Duration
}

func newDumpCmd(e *env) *cobra.Command {
	var o dumpOpts
	cmd := &cobra.Command{
		Use:   "dump --outbox DIR [flags]",
		Short: "List the pending and parked events of an outbox",
		Long: `List the events of an outbox in drain order: pending ones (waiting for
delivery) and dead ones (parked: the broker will never accept them as they
are; see relay requeue). Both by default; --pending or --dead selects.

--format json prints one object per line: id, topic, key, headers, value,
created, state, attempts, error, segment, seq, type, source, subject,
content_type, correlation_id, size (and parked_at for dead events). A key,
value or header values that are not valid UTF-8 are base64, flagged by
key_encoding, value_encoding or headers_encoding "base64".

dump never modifies a file. A segment it cannot read is named on stderr and
skipped: one locked by a live writer or a running relay (exit 0), or a
damaged one (exit 1, after everything readable was printed).`,
		Example: `  relay dump --outbox /var/lib/relay --dead
  relay dump --outbox /var/lib/relay --format json | jq -r 'select(.state=="dead") | .id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDump(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addOutboxFlag(fs, &o.outbox)
	fs.StringVar(&o.format, "format", "table", "output format: table or json")
	fs.BoolVar(&o.dead, "dead", false, "only parked (dead) events")
	fs.BoolVar(&o.pending, "pending", false, "only pending events")
	fs.IntVar(&o.limit, "limit", 0, "print at most `N` events (0: all)")
	addLockTimeoutFlag(fs, &o.lockTimeout, "skipping it")
	return cmd
}

func runDump(cmd *cobra.Command, e *env, o *dumpOpts) error {
	fs := cmd.Flags()
	if err := required(fs, "outbox", o.outbox); err != nil {
		return err
	}
	if err := checkFormat(o.format); err != nil {
		return err
	}
	if o.limit < 0 {
		return usagef("--limit %d must not be negative", o.limit)
	}
	if err := checkLockTimeout(o.lockTimeout); err != nil {
		return err
	}
	if err := checkOutbox(o.outbox, true); err != nil {
		return err
	}
	sel := outbox.DumpOptions{Pending: o.pending || !o.dead, Dead: o.dead || !o.pending, Limit: o.limit}

	out := bufio.NewWriter(e.stdout)
	var visit func(outbox.Record) error
	var flush func() error
	if o.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		visit = func(r outbox.Record) error { return enc.Encode(recordJSON(&r)) }
		flush = out.Flush
	} else {
		t := newDumpTable(out)
		visit, flush = t.row, t.flush
	}
	skipped, err := outbox.Dump(o.outbox, sel, visit, outbox.LockTimeout(o.lockTimeout))
	if ferr := flush(); ferr != nil && err == nil {
		err = ferr
	}
	damaged := reportSkipped(e.stderr, o.outbox, skipped, "not listed")
	switch {
	case err != nil:
		return failf("dump %s: %w", o.outbox, err)
	case damaged > 0:
		return errSilent
	}
	return nil
}

// dumpRecord is one line of dump --format json.
type dumpRecord struct {
	ID              string            `json:"id"`
	Topic           string            `json:"topic"`
	Key             *string           `json:"key"`
	KeyEncoding     string            `json:"key_encoding,omitempty"`
	Headers         map[string]string `json:"headers"`
	HeadersEncoding string            `json:"headers_encoding,omitempty"`
	Value           *string           `json:"value"`
	ValueEncoding   string            `json:"value_encoding,omitempty"`
	Created         string            `json:"created,omitempty"`
	State           string            `json:"state"`
	Attempts        int               `json:"attempts"`
	Error           string            `json:"error,omitempty"`
	ParkedAt        string            `json:"parked_at,omitempty"`
	Segment         string            `json:"segment"`
	Seq             uint64            `json:"seq"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Subject         string            `json:"subject"`
	ContentType     string            `json:"content_type"`
	CorrelationID   string            `json:"correlation_id"`
	Size            int               `json:"size"`
	Corrupt         string            `json:"corrupt,omitempty"` // the stored bytes do not decode
	Raw             string            `json:"raw,omitempty"`     // base64 of them, then
}

func state(r *outbox.Record) string {
	if r.Dead {
		return "dead"
	}
	return "pending"
}

func recordJSON(r *outbox.Record) *dumpRecord {
	ev := &r.Event
	d := &dumpRecord{
		ID: ev.ID, Topic: ev.Topic, State: state(r), Attempts: r.Attempts, Error: r.Error,
		Segment: r.Segment, Seq: r.Seq, Type: ev.Type, Source: ev.Source, Subject: ev.Subject,
		ContentType: ev.ContentType, CorrelationID: ev.CorrelationID, Size: r.Size,
		Headers: map[string]string{},
	}
	d.Key, d.KeyEncoding = encodeBytes(ev.Key)
	d.Value, d.ValueEncoding = encodeBytes(ev.Data)
	binary := false
	for _, h := range ev.Headers {
		binary = binary || !utf8.Valid(h.Value)
	}
	for _, h := range ev.Headers { // a repeated name keeps its last value
		if binary {
			d.Headers[h.Key] = base64.StdEncoding.EncodeToString(h.Value)
		} else {
			d.Headers[h.Key] = string(h.Value)
		}
	}
	if binary {
		d.HeadersEncoding = "base64"
	}
	if !ev.Time.IsZero() {
		d.Created = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	if r.Dead && !r.ParkedAt.IsZero() {
		d.ParkedAt = r.ParkedAt.UTC().Format(time.RFC3339Nano)
	}
	if r.Corrupt != nil {
		d.Corrupt = oneLine(r.Corrupt.Error())
		d.Raw = base64.StdEncoding.EncodeToString(r.Raw)
	}
	return d
}

// encodeBytes renders a key or value: text when it is valid UTF-8, base64
// (with its encoding named) when not, null when absent.
func encodeBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}

// dumpTable prints aligned columns. tabwriter buffers until it is flushed,
// so it is flushed every tableBlock rows: a huge outbox never sits in
// memory, at the cost of columns realigning between blocks (their widths
// are bounded by the truncation anyway).
type dumpTable struct {
	out  io.Writer
	tw   *tabwriter.Writer
	rows int
}

const tableBlock = 1000

func newDumpTable(out io.Writer) *dumpTable {
	t := &dumpTable{out: out}
	t.tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t.tw, "SEGMENT\tSEQ\tSTATE\tID\tTOPIC\tKEY\tATTEMPTS\tCREATED\tERROR")
	return t
}

func (t *dumpTable) row(r outbox.Record) error {
	ev := &r.Event
	created, errText := "-", r.Error
	if !ev.Time.IsZero() {
		created = ev.Time.UTC().Format(time.RFC3339)
	}
	if r.Corrupt != nil {
		errText = "corrupt record: " + r.Corrupt.Error()
	}
	_, err := fmt.Fprintf(t.tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
		middle(r.Segment, 32), r.Seq, state(&r), cell(ev.ID, 40), cell(ev.Topic, 40),
		keyCell(ev.Key), r.Attempts, created, cell(errText, 80))
	if err != nil {
		return err
	}
	t.rows++
	if t.rows%tableBlock == 0 {
		return t.tw.Flush()
	}
	return nil
}

func (t *dumpTable) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	if f, ok := t.out.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// cell makes s safe for one table cell (no tabs, newlines or control
// characters) and cuts it to n runes, marking the cut with "…".
func cell(s string, n int) string {
	if s == "" {
		return "-"
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > n {
		s = events.Truncate(s, n-1) + "…"
	}
	return s
}

// middle cuts s to n runes by dropping its middle: a segment name's start
// (creation time) and end (pid and random suffix) are what tell it apart.
func middle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// keyCell shows a key as text, or as hex when it is not printable text.
func keyCell(k []byte) string {
	if k == nil {
		return "-"
	}
	if utf8.Valid(k) && !strings.ContainsFunc(string(k), unicode.IsControl) {
		if len(k) == 0 {
			return `""`
		}
		return cell(string(k), 24)
	}
	return cell("0x"+hex.EncodeToString(k), 24)
}
