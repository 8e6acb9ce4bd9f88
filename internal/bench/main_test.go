package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

// fakeRelayEnv makes the test binary act as `relay run --once`, so the RSS
// measurement can be tested without building cmd/relay.
const fakeRelayEnv = "BOLTRELAY_BENCH_FAKE_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(fakeRelayEnv) == "1" {
		os.Exit(fakeRelay(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeRelay is the part of `relay run --once --outbox DIR --brokers ADDR`
// the bench uses.
func fakeRelay(args []string) int {
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "fake relay: want run")
		return 2
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	once := fs.Bool("once", false, "")
	dir := fs.String("outbox", "", "")
	brokers := fs.String("brokers", "", "")
	_ = fs.String("log-level", "", "")
	if err := fs.Parse(args[1:]); err != nil || !*once || *dir == "" || *brokers == "" {
		fmt.Fprintln(os.Stderr, "fake relay: bad arguments", args)
		return 2
	}
	ob, err := outbox.Open(*dir, outbox.WithoutWriter())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := relay.New(ob, relay.Brokers(strings.Split(*brokers, ",")...), relay.Once())
	if err != nil {
		_ = ob.Close()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = r.Run(ctx)
	if cerr := ob.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
