package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// An unset shell variable in --key "$CORRELATION_ID" must mean no key, not
// the empty key (which would send all such events to one partition).
func TestPublishEmptyKeyIsNoKey(t *testing.T) {
	dir := t.TempDir()
	mustOK(t, cli(t, "publish", "--outbox", dir, "--topic", "t", "--key", "", "--value", "x"))
	mustOK(t, cli(t, "publish", "--outbox", dir, "--topic", "t", "--key", "k", "--value", "y"))
	recs := dumpJSONOf(t, dir)
	if len(recs) != 2 {
		t.Fatalf("dump: %d records", len(recs))
	}
	keys := map[string]bool{}
	for _, r := range recs {
		keys[*r.Value] = r.Key != nil
	}
	if keys["x"] || !keys["y"] {
		t.Fatalf("key present by value: %v (want x without a key, y with one)", keys)
	}
}

// publish with no value and stdin a terminal would wait forever for input
// nobody types: it is a usage error instead.
func TestPublishTerminalStdinIsUsageError(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed: no way to give the child a terminal")
	}
	dir := t.TempDir()
	// script(1) runs the command with a pseudo-terminal as its stdin.
	cmd := exec.Command("script", "-qec", relayBin+" publish --outbox "+dir+" --topic t", "/dev/null")
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader("")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("publish with a terminal on stdin waited for input")
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "stdin is a terminal") {
		t.Fatalf("exit %v, output %q: want exit 2 naming the terminal stdin", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused publish left %d files", len(ents))
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"32MiB": 32 << 20, "1GiB": 1 << 30, "64MB": 64e6, "4096": 4096, "10KiB": 10 << 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "lots", "1.5GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
	r := relayWith(t, append(cleanEnv(), "KAFKA_BROKERS=127.0.0.1:1"), nil, "run", "--outbox", t.TempDir(), "--memory-limit", "lots")
	wantExit(t, r, 2, "--memory-limit")
}
