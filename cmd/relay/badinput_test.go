package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
	"github.com/boltrelay/boltrelay/internal/kafkatest"
	"github.com/boltrelay/boltrelay/outbox"
)

// TestBadInput: every wrong command line and every unreadable input ends
// with the right exit code and one stderr line, starting with "relay:",
// that names the flag or file concerned; never a panic.
func TestBadInput(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "outbox")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "plain-file")
	if err := os.WriteFile(file, []byte("not an outbox"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "no-such-file")
	pub := []string{"publish", "--outbox", dir, "--topic", "t"}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		names []string
	}{
		{"empty topic", []string{"publish", "--outbox", dir, "--topic", "", "--value", "x"}, exitUsage, []string{"--topic"}},
		{"missing topic", []string{"publish", "--outbox", dir, "--value", "x"}, exitUsage, []string{"--topic"}},
		{"bad topic", []string{"publish", "--outbox", dir, "--topic", "a/b", "--value", "x"}, exitUsage, []string{"--topic", "a/b"}},
		{"missing outbox", []string{"publish", "--topic", "t", "--value", "x"}, exitUsage, []string{"--outbox"}},
		{"header without =", append(pub, "--header", "tenant", "--value", "x"), exitUsage, []string{"--header", "tenant"}},
		{"reserved header", append(pub, "--header", "ce_id=x", "--value", "x"), exitUsage, []string{"--header", "ce_id"}},
		{"value and value file", append(pub, "--value", "x", "--value-file", file), exitUsage, []string{"--value", "--value-file"}},
		{"missing value file", append(pub, "--value-file", missing), exitError, []string{missing}},
		{"value file is a directory", append(pub, "--value-file", tmp), exitError, []string{tmp}},
		{"bad type", append(pub, "--type", "a\x01b", "--value", "x"), exitUsage, []string{"type"}},
		{"too large", append(pub, "--max-event-bytes", "64", "--value", strings.Repeat("x", 100)), exitError, []string{"too large", "--max-event-bytes"}},
		{"bad id", append(pub, "--id", "a\nb", "--value", "x"), exitUsage, []string{"id"}},
		{"unknown flag", append(pub, "--bogus"), exitUsage, []string{"--bogus"}},
		{"unknown command", []string{"pubish"}, exitUsage, []string{"pubish", "publish"}},
		{"no command", nil, exitUsage, []string{"command"}},
		{"stray argument", []string{"stats", "--outbox", dir, "extra"}, exitUsage, []string{"extra"}},
		{"publish to a file", []string{"publish", "--outbox", file, "--topic", "t", "--value", "x"}, exitError, []string{file, "is not a directory"}},
		{"run on a file", []string{"run", "--once", "--outbox", file, "--brokers", "127.0.0.1:1"}, exitError, []string{file, "is not a directory"}},
		{"dump a file", []string{"dump", "--outbox", file}, exitError, []string{file, "is not a directory"}},
		{"stats of a file", []string{"stats", "--outbox", file}, exitError, []string{file, "is not a directory"}},
		{"requeue in a file", []string{"requeue", "--outbox", file, "--all"}, exitError, []string{file, "is not a directory"}},
		{"dump a missing dir", []string{"dump", "--outbox", missing}, exitError, []string{missing}},
		{"bad format", []string{"dump", "--outbox", dir, "--format", "xml"}, exitUsage, []string{"--format", "xml"}},
		{"negative limit", []string{"dump", "--outbox", dir, "--limit", "-1"}, exitUsage, []string{"--limit"}},
		{"bad limit", []string{"dump", "--outbox", dir, "--limit", "many"}, exitUsage, []string{"--limit"}},
		{"bad brokers", []string{"run", "--outbox", dir, "--brokers", "nohost"}, exitUsage, []string{"--brokers", "nohost"}},
		{"bad drain timeout", []string{"run", "--outbox", dir, "--brokers", "127.0.0.1:1", "--drain-timeout", "5"}, exitUsage, []string{"--drain-timeout"}},
		{"zero drain timeout", []string{"run", "--outbox", dir, "--brokers", "127.0.0.1:1", "--drain-timeout", "0s"}, exitUsage, []string{"--drain-timeout"}},
		{"bad log level", []string{"run", "--outbox", dir, "--brokers", "127.0.0.1:1", "--log-level", "loud"}, exitUsage, []string{"--log-level", "loud"}},
		{"demo events", []string{"demo", "--events", "0"}, exitUsage, []string{"--events"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantExit(t, cli(t, tc.args...), tc.code, tc.names...)
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("failed publishes left files in the outbox: %v", ents)
	}
}

// TestHeldSegment: a segment locked by a live writer (this test process)
// is named on stderr by dump, stats, requeue and run --once, which all
// still exit 0: a live writer is normal, not an error.
func TestHeldSegment(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "held")
	dir := t.TempDir()
	publishInProcess(t, dir, "held", 2, 1) // sealed: readable and drainable
	ob, err := outbox.Open(dir)            // live: its lock is held by this process
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := ob.Publish(context.Background(), &events.Event{Topic: "held", Data: []byte("live")}); err != nil {
		t.Fatal(err)
	}
	seg := ob.Own().Name()
	skipped := func(t *testing.T, r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if strings.HasPrefix(l, "relay: skipped") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], seg) || !strings.Contains(lines[0], "locked") {
			t.Fatalf("stderr does not name the held segment %s once:\n%s", seg, r.stderr)
		}
	}

	r := cli(t, "dump", "--outbox", dir, "--format", "json")
	skipped(t, r)
	wantExit(t, r, 0, seg)
	if n := strings.Count(r.stdout, "\n"); n != 2 {
		t.Fatalf("dump printed %d records, want the 2 of the sealed segment:\n%s", n, r.stdout)
	}

	r = cli(t, "stats", "--outbox", dir, "--format", "json")
	var st statsJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || len(st.Held) != 1 || st.Held[0].Segment != seg || st.Held[0].PID != os.Getpid() || st.Pending != 2 {
		t.Fatalf("stats with a held segment: exit %d %+v\n%s", r.code, st, r.stderr)
	}

	r = cli(t, "requeue", "--outbox", dir, "--all")
	skipped(t, r)
	wantExit(t, r, 0, seg)

	r = cli(t, "run", "--once", "--outbox", dir, "--brokers", strings.Join(c.ListenAddrs(), ","), "--log-level", "warn")
	skipped(t, r)
	if got := kafkatest.Consume(t, c.ListenAddrs(), 2, 10*time.Second, "held"); len(got) != 2 {
		t.Fatalf("the sealed segment was not drained: %d records", len(got))
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if recs := dumpJSONOf(t, dir); len(recs) != 1 || *recs[0].Value != "live" {
		t.Fatalf("after the writer closed, dump shows %+v", recs)
	}
}

// TestDamagedSegment: a file named like a segment that is garbage is named
// on stderr and skipped; the good segments still drain, and dump, stats
// and run --once exit 1 because of it.
func TestDamagedSegment(t *testing.T) {
	t.Parallel()
	c := kafkatest.Cluster(t, "dmg")
	dir := t.TempDir()
	const bad = "seg-00000000000000000001-host-1-abcdef.seg"
	const short = "seg-00000000000000000002-host-1-abcdef.seg"
	garbage := make([]byte, 64<<10)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bad), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, short), garbage[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mustOK(t, cli(t, "publish", "--outbox", dir, "--topic", "dmg", "--value", "good"))
	}
	names := func(t *testing.T, r result) {
		t.Helper()
		for _, n := range []string{bad, short} {
			if !strings.Contains(r.stderr, "relay: skipped segment "+filepath.Join(dir, n)) {
				t.Fatalf("stderr does not name %s:\n%s", n, r.stderr)
			}
		}
	}

	r := cli(t, "dump", "--outbox", dir, "--format", "json")
	if r.code != exitError || strings.Count(r.stdout, "\n") != 3 || strings.Count(r.stderr, "\n") != 2 {
		t.Fatalf("dump: exit %d, want 1 after the 3 readable records and one line per damaged file:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	names(t, r)

	r = cli(t, "stats", "--outbox", dir, "--format", "json")
	var st statsJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if r.code != exitError || st.Pending != 3 || len(st.Damaged) != 2 || st.Damaged[0].Segment != bad || st.Damaged[0].Error == "" {
		t.Fatalf("stats: exit %d %+v", r.code, st)
	}
	names(t, r)

	r = cli(t, "run", "--once", "--outbox", dir, "--brokers", strings.Join(c.ListenAddrs(), ","))
	if r.code != exitError {
		t.Fatalf("run --once with a damaged segment: exit %d, want 1:\n%s", r.code, r.stderr)
	}
	names(t, r)
	if got := kafkatest.Consume(t, c.ListenAddrs(), 3, 10*time.Second, "dmg"); len(got) != 3 {
		t.Fatalf("good segments not drained: %d records", len(got))
	}
	// Nothing was written to the damaged files.
	if b, err := os.ReadFile(filepath.Join(dir, bad)); err != nil || string(b) != string(garbage) {
		t.Fatalf("the damaged file was changed (%v)", err)
	}
	r = cli(t, "dump", "--outbox", dir, "--dead")
	if r.code != exitError || strings.Count(r.stderr, "\n") != 2 {
		t.Fatalf("dump --dead: exit %d, want 1 and one line per damaged file:\n%s", r.code, r.stderr)
	}
	names(t, r)
	os.Remove(filepath.Join(dir, short))
	wantExit(t, cli(t, "dump", "--outbox", dir), exitError, filepath.Join(dir, bad), "damaged")
}

// TestHelp: every command documents itself on stdout with exit 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"publish", "run", "dump", "stats", "requeue", "demo"} {
		r := mustOK(t, cli(t, c, "--help"))
		if !strings.Contains(r.stdout, "Usage:\n  relay "+c) || r.stderr != "" {
			t.Fatalf("relay %s --help:\n%s\n%s", c, r.stdout, r.stderr)
		}
	}
	if r := mustOK(t, cli(t, "--help")); !strings.Contains(r.stdout, "relay publish") {
		t.Fatalf("relay --help:\n%s", r.stdout)
	}
}
