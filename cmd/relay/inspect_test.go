package main

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/internal/kafkatest"
)

// TestDumpStatsRequeue: a --once run against a broker where one topic is
// missing and another takes only 64 KiB records. The missing topic's event
// stays pending with its failure recorded, the oversized one is parked;
// dump, stats and requeue show and repair them.
func TestDumpStatsRequeue(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "present")
	if err := c.CreateTopic("small", 1, map[string]string{"max.message.bytes": "65536"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	big := make([]byte, 200<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(bigFile, big, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := func(args ...string) string {
		r := mustOK(t, cli(t, append([]string{"publish", "--outbox", dir}, args...)...))
		return strings.TrimSpace(r.stdout)
	}
	e1 := pub("--topic", "present", "--key", "a", "--value", "one")
	e2 := pub("--topic", "missing", "--key", "b", "--value", "two")
	e3 := pub("--topic", "small", "--key", "c", "--value-file", bigFile)

	addr := strings.Join(c.ListenAddrs(), ",")
	r := cli(t, "run", "--once", "--outbox", dir, "--brokers", addr, "--log-level", "error")
	if r.code != exitError {
		t.Fatalf("run --once with a missing topic: exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "relay: ") || !strings.Contains(last, `"missing"`) || !strings.Contains(last, "still pending") {
		t.Fatalf("last stderr line does not name the waiting topic: %q\n%s", last, r.stderr)
	}
	if got := kafkatest.Consume(t, c.ListenAddrs(), 1, 10*time.Second, "present"); len(got) != 1 {
		t.Fatalf("the present topic got %d records, want 1 (a missing topic must not block it)", len(got))
	}

	before := snapshot(t, dir)
	recs := dumpJSONOf(t, dir)
	byID := map[string]dumpRecord{}
	for _, d := range recs {
		byID[d.ID] = d
	}
	if _, ok := byID[e1]; ok || len(recs) != 2 {
		t.Fatalf("dump after the run: %+v; want only E2 and E3", recs)
	}
	d2, d3 := byID[e2], byID[e3]
	if d2.State != "pending" || d2.Topic != "missing" || d2.Attempts < 1 || !strings.Contains(d2.Error, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("E2 in dump: %+v; want pending, attempts >= 1, UNKNOWN_TOPIC_OR_PARTITION", d2)
	}
	if d3.State != "dead" || d3.Error == "" || d3.ValueEncoding != "base64" || d3.ParkedAt == "" || d3.Attempts < 1 {
		t.Fatalf("E3 in dump: state %s attempts %d error %q encoding %q parked %q; want dead with an error",
			d3.State, d3.Attempts, d3.Error, d3.ValueEncoding, d3.ParkedAt)
	}
	t.Logf("E3 parked: %s", d3.Error)
	if dead := dumpJSONOf(t, dir, "--dead"); len(dead) != 1 || dead[0].ID != e3 {
		t.Fatalf("dump --dead: %+v", dead)
	}
	if pending := dumpJSONOf(t, dir, "--pending"); len(pending) != 1 || pending[0].ID != e2 {
		t.Fatalf("dump --pending: %+v", pending)
	}
	if lim := dumpJSONOf(t, dir, "--limit", "1"); len(lim) != 1 {
		t.Fatalf("dump --limit 1: %d records", len(lim))
	}
	table := mustOK(t, cli(t, "dump", "--outbox", dir)).stdout
	tl := strings.Split(strings.TrimSpace(table), "\n")
	if len(tl) != 3 || !strings.HasPrefix(tl[0], "SEGMENT") || !strings.Contains(table, e3) || !strings.Contains(table, "dead") {
		t.Fatalf("dump table:\n%s", table)
	}
	for _, col := range []string{"SEQ", "STATE", "ID", "TOPIC", "KEY", "ATTEMPTS", "CREATED", "ERROR"} {
		if !strings.Contains(tl[0], col) {
			t.Fatalf("dump table header lacks %s: %q", col, tl[0])
		}
	}

	st := statsJSONOf(t, dir)
	if st.Pending != 1 || st.Dead != 1 || st.OldestPending == nil || len(st.Failing) != 1 ||
		st.Failing[0].Topic != "missing" || st.Failing[0].Events != 1 || st.Failing[0].Attempts < 1 ||
		!strings.Contains(st.Failing[0].LastError, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("stats: %+v", st)
	}
	if out := mustOK(t, cli(t, "stats", "--outbox", dir)).stdout; !strings.Contains(out, `topic "missing"`) {
		t.Fatalf("stats table does not show the failing topic:\n%s", out)
	}

	if after := snapshot(t, dir); after != before {
		t.Fatalf("dump or stats changed the outbox:\nbefore %s\nafter  %s", before, after)
	}

	// requeue: usage errors, an unknown ID, then the parked one.
	wantExit(t, cli(t, "requeue", "--outbox", dir), exitUsage, "--all", "--id")
	wantExit(t, cli(t, "requeue", "--outbox", dir, "--all", "--id", e3), exitUsage, "--all", "--id")
	const unknown = "01890a5d-ac96-774b-bcce-b302099a8057"
	wantExit(t, cli(t, "requeue", "--outbox", dir, "--id", unknown), exitError, unknown)
	r = mustOK(t, cli(t, "requeue", "--outbox", dir, "--id", e3))
	if r.stdout != "requeued 1 event\n" {
		t.Fatalf("requeue printed %q", r.stdout)
	}
	pending := dumpJSONOf(t, dir, "--pending")
	if len(pending) != 2 || pending[1].ID != e3 || pending[1].State != "pending" {
		t.Fatalf("after requeue, dump --pending: %+v", pending)
	}
	if dead := dumpJSONOf(t, dir, "--dead"); len(dead) != 0 {
		t.Fatalf("after requeue, still dead: %+v", dead)
	}
	if r := mustOK(t, cli(t, "requeue", "--outbox", dir, "--all")); r.stdout != "requeued 0 events\n" {
		t.Fatalf("requeue --all with nothing parked printed %q", r.stdout)
	}
}

// snapshot describes every file in dir (name, size, mtime, content hash),
// to show that inspection wrote nothing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%d:%x ", e.Name(), fi.Size(), fi.ModTime().UnixNano(), sha256.Sum256(data))
	}
	return b.String()
}
