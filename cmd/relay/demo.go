package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/outbox"
	"github.com/boltrelay/boltrelay/relay"
)

type demoOpts struct {
	outbox   string
	events   int
	keys     int
	timeout  time.Duration
	logLevel string
}

// demoSeqHeader carries an event's publish index, so that the consumer can
// check the order per key.
const demoSeqHeader = "demo_seq"

var demoTopics = []string{
	events.TopicAgentAction,
	events.TopicTransformationStarted,
	events.TopicTransformationCompleted,
	events.TopicTransformationFailed,
}

func newDemoCmd(e *env) *cobra.Command {
	var o demoOpts
	cmd := &cobra.Command{
		Use:   "demo [flags]",
		Short: "Publish, deliver and verify events against an embedded in-memory broker",
		Long: `Run the whole path on this machine, with nothing to set up:

 1. publish --events agent action and transformation events (--keys
    correlation IDs) into an outbox while no broker is running;
 2. start an in-memory development Kafka broker (kfake) on 127.0.0.1;
 3. run an embedded relay until every event is delivered;
 4. consume everything back and check: nothing lost, no duplicates, and the
    order per key kept.

The last line is the verdict, e.g.
  published 300, delivered 300, lost 0, duplicates 0, order per key kept
and the exit code is 1 if anything was lost or out of order. The outbox is
a temporary directory unless --outbox is given. Never use the embedded
broker for anything but this demo: it keeps everything in memory.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return runDemo(e, &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&o.outbox, "outbox", "", "outbox directory (default: a temporary one, removed afterwards)")
	fs.IntVar(&o.events, "events", 300, "how many events to publish")
	fs.IntVar(&o.keys, "keys", 20, "how many distinct correlation IDs (keys) they use")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up on delivery after this long")
	fs.StringVar(&o.logLevel, "log-level", "warn", "relay log level (to stderr): debug, info, warn or error")
	return cmd
}

func runDemo(e *env, o *demoOpts) (err error) {
	switch {
	case o.events < 1 || o.events > 1_000_000:
		return usagef("--events %d must be between 1 and 1000000", o.events)
	case o.keys < 1:
		return usagef("--keys %d must be at least 1", o.keys)
	case o.timeout <= 0:
		return usagef("--timeout %v must be positive", o.timeout)
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(e.stdout, "demo: "+format+"\n", args...) }
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir := o.outbox
	if dir == "" {
		if dir, err = os.MkdirTemp("", "relay-demo-"); err != nil {
			return failf("create a temporary outbox: %w", err)
		}
		defer os.RemoveAll(dir)
		say("outbox %s (temporary)", dir)
	} else {
		if err := checkOutbox(dir, false); err != nil {
			return err
		}
		say("outbox %s", dir)
	}

	// Shutdown order, whatever fails on the way: stop the relay and wait
	// for it, then close the outbox, then the broker.
	var (
		ob         *outbox.Outbox
		cluster    *kfake.Cluster
		stopRelay  = func() {}
		relayWG    sync.WaitGroup
		shutdownMu sync.Once
	)
	shutdown := func() {
		shutdownMu.Do(func() {
			stopRelay()
			relayWG.Wait()
			if ob != nil {
				if cerr := ob.Close(); cerr != nil && err == nil {
					err = failf("close outbox: %w", cerr)
				}
			}
			if cluster != nil {
				cluster.Close()
			}
		})
	}
	defer shutdown()

	// 1. Publish with no broker anywhere: Publish only needs the disk.
	ob, err = outbox.Open(dir, outbox.Logger(log))
	if err != nil {
		return failf("open outbox: %w", err)
	}
	pubStart := time.Now()
	ids, err := demoPublish(ctx, ob, o.events, o.keys)
	if err != nil {
		return err
	}
	st, err := ob.Stats()
	if err != nil {
		return failf("stats: %w", err)
	}
	say("published %d events (%d correlation IDs, %d topics) in %v with no broker running; %d pending",
		len(ids), o.keys, len(demoTopics), time.Since(pubStart).Round(time.Millisecond), st.Pending)

	// 2. The broker comes up.
	cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, demoTopics...))
	if err != nil {
		return failf("start the in-memory broker: %w", err)
	}
	addrs := cluster.ListenAddrs()
	say("started in-memory Kafka broker (kfake) at %s", strings.Join(addrs, ","))

	// 3. The embedded relay, exactly as an application runs it.
	r, err := relay.New(ob, relay.Brokers(addrs...), relay.Logger(log))
	if err != nil {
		return failf("%w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	stopRelay = cancel
	relayDone := make(chan struct{})
	var runErr error
	relayWG.Add(1)
	go func() {
		defer relayWG.Done()
		defer close(relayDone)
		runErr = r.Run(rctx)
	}()
	start := time.Now()
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastSaid := time.Now()
	n := int64(len(ids))
wait:
	for h := r.Health(); h.Delivered < n; h = r.Health() {
		select {
		case <-tick.C:
			if time.Since(lastSaid) >= 500*time.Millisecond {
				say("delivered %d/%d", h.Delivered, n)
				lastSaid = time.Now()
			}
		case <-relayDone:
			break wait
		case <-deadline.C:
			say("gave up waiting for delivery after %v", o.timeout)
			break wait
		case <-ctx.Done():
			return failf("interrupted")
		}
	}
	h := r.Health()
	say("relay delivered %d/%d in %v", h.Delivered, n, time.Since(start).Round(time.Millisecond))
	stopRelay()
	relayWG.Wait()
	if runErr != nil {
		say("relay stopped: %s", oneLine(runErr.Error()))
	} else {
		say("relay stopped")
	}
	if st, err := ob.Stats(); err == nil {
		say("outbox: %d pending, %d dead", st.Pending, st.Dead)
	}

	// 4. Read everything back and check it.
	recs, err := demoConsume(ctx, cluster, addrs)
	if err != nil {
		return failf("consume: %w", err)
	}
	perTopic := map[string]int{}
	redacted := ""
	for _, rec := range recs {
		perTopic[rec.Topic]++
		if redacted == "" && rec.Topic == events.TopicTransformationStarted {
			var t events.TransformationEvent
			if json.Unmarshal(rec.Value, &t) == nil {
				redacted = t.UserRequest
			}
		}
	}
	var counts []string
	for _, t := range demoTopics {
		counts = append(counts, fmt.Sprintf("%s %d", t, perTopic[t]))
	}
	say("consumed %d records: %s", len(recs), strings.Join(counts, ", "))
	if redacted != "" {
		say("user_request as delivered (redacted before it reached the disk): %q", redacted)
	}
	v := ids.verify(recs)
	shutdown()
	if err != nil {
		return err
	}
	order := "order per key kept"
	if v.outOfOrder > 0 {
		order = "order per key BROKEN"
	}
	fmt.Fprintf(e.stdout, "published %d, delivered %d, lost %d, duplicates %d, %s\n", n, v.delivered, v.lost, v.duplicates, order)
	if v.lost > 0 || v.outOfOrder > 0 {
		return errSilent
	}
	return nil
}

// demoIDs is what the demo published: each event's ID and its publish index.
type demoIDs map[string]int

// demoPublish publishes n events, one Publish each, from one goroutine per
// correlation ID, as concurrent hooks would: their commits are shared
// (group commit) and each key's events stay in their order. Per key the
// story is a transformation started, a few actions, and a completed (or
// failed) transformation.
func demoPublish(ctx context.Context, ob *outbox.Outbox, n, keys int) (demoIDs, error) {
	ids := make(demoIDs, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for k := 0; k < min(keys, n); k++ {
		corr := fmt.Sprintf("req-%02d-%s", k, events.NewID()[24:])
		wg.Add(1)
		go func() {
			defer wg.Done()
			conf := 0.9
			for i, step := k, 0; i < n; i, step = i+keys, step+1 {
				ev, err := demoEvent(corr, i, step, &conf)
				if err == nil {
					ev.Headers = append(ev.Headers, events.Header{Key: demoSeqHeader, Value: []byte(strconv.Itoa(i))})
					err = ob.Publish(ctx, &ev)
				}
				mu.Lock()
				if err != nil {
					if first == nil {
						first = failf("publish event %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				ids[ev.ID] = i
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ids, first
}

func demoEvent(corr string, seq, step int, conf *float64) (events.Event, error) {
	details, _ := json.Marshal(map[string]any{"demo_seq": seq, "key_step": step, "file_path": fmt.Sprintf("src/file%d.go", step)})
	action := func(typ, name string) (events.Event, error) {
		return events.NewActionEvent(events.ActionEvent{
			AgentName: "demo-agent", ActionType: typ, ActionName: name, ActionDetails: details,
			CorrelationID: corr, DurationMS: int64(5 + step%40),
			ProjectPath: "/src/demo", ProjectName: "demo", WorkingDirectory: "/src/demo",
		})
	}
	transform := func(p events.Phase) (events.Event, error) {
		t := events.TransformationEvent{
			Phase: p, SourceAgent: "router", TargetAgent: "demo-agent", CorrelationID: corr,
			TransformationReason: "demo", SessionID: "demo-session",
			UserRequest:       "refactor the parser, my token=hunter2 is in .env",
			RoutingConfidence: conf, RoutingStrategy: "fuzzy",
		}
		switch p {
		case events.PhaseCompleted:
			ok := true
			t.Success, t.TotalDurationMS = &ok, int64(100+step)
		case events.PhaseFailed:
			bad := false
			t.Success, t.ErrorMessage, t.ErrorType = &bad, "agent timed out", "timeout"
		}
		return events.NewTransformationEvent(t)
	}
	switch step % 6 {
	case 0:
		return transform(events.PhaseStarted)
	case 1:
		return action(events.ActionToolCall, "Read")
	case 2:
		return action(events.ActionToolCall, "Bash")
	case 3:
		return action(events.ActionDecision, "select_agent")
	case 4:
		if seq%3 == 2 { // some requests fail; which depends on the key

			return transform(events.PhaseFailed)
		}
		return transform(events.PhaseCompleted)
	default:
		return action(events.ActionSuccess, "Write")
	}
}

// demoConsume reads every record the broker holds on the demo topics:
// until the count reaches the sum of the partitions' high watermarks, so a
// duplicate cannot hide behind an early stop.
func demoConsume(ctx context.Context, cluster *kfake.Cluster, addrs []string) ([]*kgo.Record, error) {
	var total int64
	for _, t := range demoTopics {
		for _, p := range cluster.PartitionInfos(t) {
			total += p.HighWatermark
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(demoTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < total && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if int64(len(out)) < total {
		return out, fmt.Errorf("read %d of the %d records on the broker before timing out", len(out), total)
	}
	return out, nil
}

type demoVerdict struct {
	delivered, lost, duplicates, outOfOrder int
}

// verify checks the records against what was published: by ce_id for loss
// and duplicates, and by publish index per topic and key for order (Kafka
// orders per partition, and one key maps to one partition of a topic).
func (ids demoIDs) verify(recs []*kgo.Record) demoVerdict {
	var v demoVerdict
	seen := make(map[string]int, len(ids))
	last := map[string]int{}
	for _, rec := range recs {
		id, _ := relay.HeaderValue(rec, relay.HeaderID)
		if _, ok := ids[id]; !ok {
			continue // not ours
		}
		seen[id]++
		if seen[id] > 1 {
			v.duplicates++
			continue // a redelivery repeats an old position; it is not disorder
		}
		s, _ := relay.HeaderValue(rec, demoSeqHeader)
		i, err := strconv.Atoi(s)
		if err != nil || i != ids[id] {
			v.outOfOrder++ // the record does not carry what was published
			continue
		}
		k := rec.Topic + "\x00" + string(rec.Key)
		if prev, ok := last[k]; ok && i < prev {
			v.outOfOrder++
		}
		last[k] = i
	}
	v.delivered = len(seen)
	v.lost = len(ids) - len(seen)
	return v
}
