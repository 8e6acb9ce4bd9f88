package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/boltrelay/boltrelay/outbox"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line was wrong: nothing was done
)

// cliError carries an exit code. Every error a command returns is one;
// an error that is not came from cobra itself (an unknown flag or command)
// and is a usage error.
type cliError struct {
	code int
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usagef reports a wrong command line: exit 2, with a pointer to --help.
func usagef(format string, args ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failf reports a failure of the command itself: exit 1.
func failf(format string, args ...any) error {
	return &cliError{code: exitError, err: fmt.Errorf(format, args...)}
}

// errSilent is returned by a command that has already printed what went
// wrong (e.g. one line per damaged segment) and only needs exit 1.
var errSilent = &cliError{code: exitError, err: errors.New("")}

// report prints err as one line on stderr and returns the exit code.
func report(stderr io.Writer, root, cmd *cobra.Command, err error) int {
	var ce *cliError
	code := exitUsage
	if errors.As(err, &ce) {
		code = ce.code
		if ce == errSilent {
			return code
		}
	}
	msg := err.Error()
	// cobra's own suggestion block is several lines; fold it into one.
	if i := strings.Index(msg, "\n\nDid you mean this?"); i >= 0 {
		sugg := strings.Fields(msg[i+len("\n\nDid you mean this?"):])
		msg = msg[:i] + "; did you mean " + strings.Join(sugg, " or ") + "?"
	}
	fmt.Fprintf(stderr, "relay: %s\n", oneLine(msg))
	if code == exitUsage {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// oneLine makes an error message fit one line and drops the package
// prefixes that the "relay: " in front already stands for.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	for _, p := range []string{"outbox: ", "relay: ", "events: "} {
		s = strings.ReplaceAll(s, ": "+p, ": ")
		s = strings.ReplaceAll(s, "; "+p, "; ")
		s = strings.ReplaceAll(s, "("+p, "(")
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// reportSkipped prints one line per segment that an inspection or a --once
// run could not read, and returns how many of them are damaged (held ones
// are normal: a live writer or a running relay has them). left says what
// that means for a held segment's events ("not drained", ...).
func reportSkipped(stderr io.Writer, dir string, skipped []outbox.SegmentInfo, left string) (damaged int) {
	for _, s := range skipped {
		path := filepath.Join(dir, s.Name)
		if s.State == outbox.StateHeld {
			who := "a live writer or a relay"
			if s.PID > 0 {
				who += fmt.Sprintf("; written by pid %d", s.PID)
			}
			fmt.Fprintf(stderr, "relay: skipped segment %s: locked by another process (%s); its events are %s\n", path, who, left)
			continue
		}
		damaged++
		fmt.Fprintf(stderr, "relay: skipped segment %s: %s\n", path, segmentReason(s.Err))
	}
	return damaged
}

// segmentReason is a segment error without the path the caller already
// printed.
func segmentReason(err error) string {
	if err == nil {
		return "damaged"
	}
	var se *outbox.SegmentError
	if errors.As(err, &se) {
		err = se.Err
	}
	return oneLine(err.Error())
}
