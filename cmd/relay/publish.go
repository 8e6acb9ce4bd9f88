package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
)

type publishOpts struct {
	outbox, topic, key, id, corr      string
	typ, source, subject, contentType string
	value, valueFile                  string
	headers                           []string
	maxEventBytes                     int
}

func newPublishCmd(e *env) *cobra.Command {
	var o publishOpts
	cmd := &cobra.Command{
		Use:   "publish --outbox DIR --topic TOPIC [flags]",
		Short: "Store one event durably in the outbox (no broker needed)",
		Long: `Store one event in the outbox and print its ID.

publish returns (exit 0, the event ID alone on stdout) only once the event
is on disk: the bbolt commit that holds it has been fsynced. It never talks
to a broker; a relay (relay run) delivers it later. The value is --value,
or the contents of --value-file, or else all of stdin.`,
		Example: `  relay publish --outbox /var/lib/relay --topic orders --key order-17 --value '{"total":3}'
  relay publish --outbox /var/lib/relay --topic blobs --value-file photo.jpg --header origin=camera
  echo '{"ok":true}' | relay publish --outbox /var/lib/relay --topic orders --content-type application/json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPublish(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addOutboxFlag(fs, &o.outbox)
	fs.StringVar(&o.topic, "topic", "", "Kafka topic to deliver to (required)")
	fs.StringVar(&o.key, "key", "", "record key; events with one key keep their order (default: no key)")
	fs.StringArrayVar(&o.headers, "header", nil, "extra record header `NAME=VALUE`, repeatable; NAME must not start with ce_")
	fs.StringVar(&o.typ, "type", "", "CloudEvents type, ce_type (default \""+events.DefaultType+"\")")
	fs.StringVar(&o.source, "source", "", "CloudEvents source, ce_source (default \""+events.DefaultSource+"\")")
	fs.StringVar(&o.subject, "subject", "", "CloudEvents subject, ce_subject (default none)")
	fs.StringVar(&o.contentType, "content-type", "", "media type of the value, sent as content-type (default none)")
	fs.StringVar(&o.corr, "correlation-id", "", "correlation ID, sent as the correlation_id header (default none)")
	fs.StringVar(&o.id, "id", "", "event ID, ce_id (default: a new UUIDv7)")
	fs.StringVar(&o.value, "value", "", "the record value, as `TEXT`")
	fs.StringVar(&o.valueFile, "value-file", "", "read the record value from `FILE` (\"-\" for stdin)")
	fs.IntVar(&o.maxEventBytes, "max-event-bytes", outbox.DefaultMaxEventBytes, "refuse an event whose stored size exceeds `N` bytes (0: no limit)")
	return cmd
}

func runPublish(cmd *cobra.Command, e *env, o *publishOpts) error {
	fs := cmd.Flags()
	// Everything that can be wrong with the command line is checked before
	// the outbox is touched, so a usage error never leaves a segment behind.
	if err := required(fs, "outbox", o.outbox); err != nil {
		return err
	}
	if err := required(fs, "topic", o.topic); err != nil {
		return err
	}
	if err := events.ValidateTopic(o.topic); err != nil {
		return usagef("--topic: %s", invalid(err))
	}
	ev := &events.Event{
		ID:            o.id,
		Topic:         o.topic,
		Type:          o.typ,
		Source:        o.source,
		Subject:       o.subject,
		ContentType:   o.contentType,
		CorrelationID: o.corr,
	}
	// An empty --key (often an unset shell variable) means no key, not the
	// empty key, which would send every such event to one partition.
	if o.key != "" {
		ev.Key = []byte(o.key)
	}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, "=")
		if !ok {
			return usagef("--header %q is not NAME=VALUE", h)
		}
		if err := events.ValidateHeaderName(name); err != nil {
			return usagef("--header %q: %s", h, invalid(err))
		}
		ev.Headers = append(ev.Headers, events.Header{Key: name, Value: []byte(value)})
	}
	if fs.Changed("value") && fs.Changed("value-file") {
		return usagef("--value and --value-file are exclusive: give one")
	}
	if fs.Changed("value-file") && o.valueFile == "" {
		return usagef("--value-file is empty")
	}
	if o.maxEventBytes < 0 {
		return usagef("--max-event-bytes %d must not be negative", o.maxEventBytes)
	}
	if err := checkOutbox(o.outbox, false); err != nil {
		return err
	}
	data, err := readValue(fs.Changed("value"), o.value, o.valueFile, e.stdin)
	if err != nil {
		return err
	}
	ev.Data = data
	// Validate here, as Publish would, so that a bad event never costs a
	// segment file (created, then removed again).
	ev.Prepare(time.Now().UTC())
	if err := ev.Validate(o.maxEventBytes); err != nil {
		if errors.Is(err, events.ErrTooLarge) {
			return failf("%w (see --max-event-bytes)", err)
		}
		return usagef("%s", invalid(err))
	}

	ob, err := outbox.Open(o.outbox, outbox.MaxEventBytes(o.maxEventBytes))
	if err != nil {
		return failf("open outbox: %w", err)
	}
	if err := ob.Publish(context.Background(), ev); err != nil {
		_ = ob.Close() // nothing was stored; the empty segment is removed
		if errors.Is(err, events.ErrInvalid) {
			return &cliError{code: exitUsage, err: err}
		}
		return failf("%w", err)
	}
	if err := ob.Close(); err != nil {
		// Publish returned: the event is on disk and will be delivered.
		// Say so, so that a caller does not publish it a second time.
		return failf("event %s is stored, but closing the outbox failed: %w", ev.ID, err)
	}
	_, err = fmt.Fprintln(e.stdout, ev.ID)
	return err
}

// readValue returns the value from --value, --value-file or stdin.
func readValue(haveValue bool, value, file string, stdin io.Reader) ([]byte, error) {
	switch {
	case haveValue:
		return []byte(value), nil
	case file == "" || file == "-":
		if f, ok := stdin.(*os.File); ok && file == "" {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return nil, usagef("no value: give --value or --value-file, or pipe it on stdin (stdin is a terminal)")
			}
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, failf("read value from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, failf("--value-file %s: %w", file, err)
	}
	return b, nil
}
