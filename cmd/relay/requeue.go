package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/outbox"
)

type requeueOpts struct {
	outbox      string
	all         bool
	ids         []string
	lockTimeout time.Duration
}

func newRequeueCmd(e *env) *cobra.Command {
	var o requeueOpts
	cmd := &cobra.Command{
		Use:   "requeue --outbox DIR (--all | --id ID...)",
		Short: "Move parked (dead) events back to pending",
		Long: `Move parked (dead) events back to pending, so that the relay tries them again:
all of them (--all), or those with the given IDs (--id, repeatable). Fix what
made the broker refuse them first (a topic's max.message.bytes, a policy),
or they are parked again.

Requeued events drain after what is pending now: their order relative to
other events of their key is not kept. Segments locked by another process
(a live writer, or a relay draining them) cannot be changed; they are named
on stderr. An --id that is not parked in any readable segment is an error
(exit 1) naming it; the others are still requeued.`,
		Example: `  relay requeue --outbox /var/lib/relay --id 01890a5d-ac96-774b-bcce-b302099a8057
  relay requeue --outbox /var/lib/relay --all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRequeue(cmd, e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addOutboxFlag(fs, &o.outbox)
	fs.BoolVar(&o.all, "all", false, "requeue every parked event")
	fs.StringArrayVar(&o.ids, "id", nil, "requeue the parked event with this `ID` (repeatable)")
	addLockTimeoutFlag(fs, &o.lockTimeout, "skipping it")
	return cmd
}

func runRequeue(cmd *cobra.Command, e *env, o *requeueOpts) error {
	fs := cmd.Flags()
	if err := required(fs, "outbox", o.outbox); err != nil {
		return err
	}
	switch {
	case o.all && len(o.ids) > 0:
		return usagef("--all and --id are exclusive: give one")
	case !o.all && len(o.ids) == 0:
		return usagef("nothing to requeue: give --all or --id ID")
	}
	for _, id := range o.ids {
		if id == "" {
			return usagef("--id is empty")
		}
	}
	if err := checkLockTimeout(o.lockTimeout); err != nil {
		return err
	}
	if err := checkOutbox(o.outbox, true); err != nil {
		return err
	}
	var ids []string
	if !o.all {
		ids = o.ids
	}
	moved, err := outbox.Requeue(o.outbox, ids, outbox.LockTimeout(o.lockTimeout))
	fmt.Fprintf(e.stdout, "requeued %s\n", plural(int64(len(moved)), "event", "events"))

	var skipped []outbox.SegmentInfo
	var rest []error
	for _, x := range flatten(err) {
		var se *outbox.SegmentError
		switch {
		case errors.As(x, &se) && errors.Is(x, outbox.ErrLocked):
			name := filepath.Base(se.Path)
			skipped = append(skipped, outbox.SegmentInfo{Name: name, State: outbox.StateHeld, PID: outbox.SegmentPID(name), Err: x})
		case errors.As(x, &se) && errors.Is(x, outbox.ErrDamaged):
			skipped = append(skipped, outbox.SegmentInfo{Name: filepath.Base(se.Path), State: outbox.StateDamaged, Err: x})
		default:
			rest = append(rest, x)
		}
	}
	damaged := reportSkipped(e.stderr, o.outbox, skipped, "not requeued")
	switch {
	case len(rest) > 0:
		return failf("requeue: %w", errors.Join(rest...))
	case damaged > 0:
		return errSilent
	}
	return nil
}

// flatten lists the leaves of an errors.Join tree.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
