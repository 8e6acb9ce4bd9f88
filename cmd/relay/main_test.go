package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// relayBin is the relay binary built once by TestMain; the tests run it as
// real processes, as a user or a hook would.
var relayBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "relay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	relayBin = filepath.Join(dir, "relay")
	args := []string{"build", "-o", relayBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build relay: %v\n", err)
		return 1
	}
	// goleak.VerifyTestMain exits the process itself; this is the same
	// check with room for the cleanup above.
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// result is what a finished relay process left.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// cleanEnv is the test's environment without the broker variables, so
// that what the developer's shell exports cannot change a test.
func cleanEnv(extra ...string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0" // a race-built child otherwise sleeps 1s at exit
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "KAFKA_BROKERS="), strings.HasPrefix(kv, "KAFKA_BOOTSTRAP_SERVERS="):
			continue
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "GORACE="+gorace), extra...)
}

// cli runs the binary to completion (at most a minute) with a clean
// environment.
func cli(t testing.TB, args ...string) result {
	t.Helper()
	return relayWith(t, cleanEnv(), nil, args...)
}

func relayWith(t testing.TB, env []string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, relayBin, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("relay %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("relay %s: still running after a minute; stderr:\n%s", strings.Join(args, " "), r.stderr)
	}
	noCrash(t, r.stderr)
	return r
}

// noCrash fails on anything that looks like a Go panic or a race report.
func noCrash(t testing.TB, stderr string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic", "DATA RACE"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("stderr holds %q:\n%s", bad, stderr)
		}
	}
}

// wantExit checks the exit code and that stderr is exactly one line that
// starts with "relay:" and contains every want. Usage errors (exit 2) may
// add the one-line pointer to --help.
func wantExit(t testing.TB, r result, code int, wants ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if code == exitUsage && len(lines) == 2 && strings.HasPrefix(lines[1], "Run 'relay") && strings.HasSuffix(lines[1], "--help' for usage.") {
		lines = lines[:1]
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "relay: ") {
		t.Fatalf("stderr is not one line starting with \"relay: \":\n%s", r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(lines[0], w) {
			t.Fatalf("stderr does not name %q:\n%s", w, r.stderr)
		}
	}
}

// mustOK fails unless the process exited 0.
func mustOK(t testing.TB, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// proc is a relay process running in the background.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the binary in the background; the process is killed at test
// cleanup if it is still running.
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(relayBin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits (bounded) for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("relay still running after %v; stderr:\n%s", within, p.stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatal(p.err)
	return -1
}

// statsJSONOf runs relay stats --format json.
func statsJSONOf(t testing.TB, dir string) statsJSON {
	t.Helper()
	r := mustOK(t, cli(t, "stats", "--outbox", dir, "--format", "json"))
	var st statsJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats json: %v\n%s", err, r.stdout)
	}
	return st
}

// dumpJSONOf runs relay dump --format json with extra flags.
func dumpJSONOf(t testing.TB, dir string, flags ...string) []dumpRecord {
	t.Helper()
	r := mustOK(t, cli(t, append([]string{"dump", "--outbox", dir, "--format", "json"}, flags...)...))
	var out []dumpRecord
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var d dumpRecord
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("dump json line %q: %v", line, err)
		}
		out = append(out, d)
	}
	return out
}
