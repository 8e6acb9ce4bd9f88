// Command relay is boltrelay's command-line tool: it publishes events into a
// durable local outbox, drains an outbox to Kafka, and inspects and repairs
// one (dump, stats, requeue). `relay demo` runs the whole path against an
// embedded in-memory broker.
//
// The commands are thin: each one parses its flags, calls the packages
// events, outbox and relay, and prints. Exit codes: 0 ok, 1 error, 2 usage.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(execute(os.Args[1:], &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	}))
}

// env is what a command may touch of the process: its standard streams and
// environment. Keeping them here rather than in globals keeps every command
// honest about what it reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// execute runs the command line and returns the exit code. A panic anywhere
// on this goroutine becomes one line on stderr and exit 1: a user never sees
// a stack trace, whatever the input (a damaged file included).
func execute(args []string, e *env) int {
	return executeRoot(newRootCmd(e), args, e)
}

func executeRoot(root *cobra.Command, args []string, e *env) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(e.stderr, "relay: internal error: %s\n", oneLine(fmt.Sprint(p)))
			code = exitError
		}
	}()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	return report(e.stderr, root, cmd, err)
}
