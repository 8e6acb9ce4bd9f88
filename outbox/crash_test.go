package outbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boltrelay/boltrelay/events"
)

// Environment of the crash-test child: the outbox directory, and how many
// goroutines publish.
const (
	crashDirEnv = "BOLTRELAY_OUTBOX_CRASH_DIR"
	crashGoEnv  = "BOLTRELAY_OUTBOX_CRASH_GOROUTINES"
)

// TestHelperProcess is the crash-test child, not a test: run by
// TestCrashKillNineLosesNothing in a process of its own, it opens the outbox
// and publishes until it is killed, printing each event's ID on stdout
// only after Publish returned nil.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("crash-test child; runs only when started by TestCrashKillNineLosesNothing")
	}
	g, _ := strconv.Atoi(os.Getenv(crashGoEnv))
	g = max(g, 1)
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		defer out.Unlock()
		if _, err := fmt.Fprintln(os.Stdout, s); err != nil {
			os.Exit(4) // the parent is gone
		}
	}
	say("OPENING")
	o, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	say("OPENED")
	deadline := time.Now().Add(30 * time.Second) // the parent kills long before
	var wg sync.WaitGroup
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
				e := &events.Event{Topic: "crash", Key: []byte(strconv.Itoa(w)), Data: fmt.Appendf(nil, "%d-%d", w, i)}
				if err := o.Publish(bg, e); err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(3)
				}
				say(e.ID)
			}
		}()
	}
	wg.Wait()
	_ = o.Close()
	os.Exit(0)
}

type crashRound struct {
	name       string
	goroutines int
	killAfter  int // acknowledged publishes before SIGKILL; 0 kills during Open
}

// runCrashChild starts the child on dir, kills it with SIGKILL as the round
// says, and returns the IDs it reported as published and its pid.
func runCrashChild(t *testing.T, dir string, r crashRound) ([]string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashGoEnv+"="+strconv.Itoa(r.goroutines))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the child does not outlive this round.
	guard := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer guard.Stop()

	var ids []string
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("SIGKILL: %v", err)
			}
		}
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // ends at EOF: the child is dead (killed, or by the guard)
		line := sc.Text()
		switch line {
		case "OPENING":
			if r.killAfter == 0 {
				kill()
			}
			continue
		case "OPENED":
			continue
		}
		if _, err := events.ParseID(line); err != nil {
			t.Fatalf("child printed %q, not an event ID", line)
		}
		ids = append(ids, line) // printed after Publish returned nil: acknowledged
		if r.killAfter > 0 && len(ids) >= r.killAfter {
			kill()
		}
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !killed || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %s: child ended with %v (killed by us: %v) after %d publishes; stderr:\n%s", r.name, err, killed, len(ids), stderr.String())
	}
	return ids, cmd.Process.Pid
}

// A writer killed with SIGKILL, at any point (while opening, or while
// publishing from one or several goroutines), loses no event whose Publish
// returned, and leaves nothing that looks damaged.
func TestCrashKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	rounds := []crashRound{
		{"kill-during-open", 1, 0},
		{"kill-after-300", 1, 300},
		{"kill-during-open-again", 1, 0},
		{"kill-after-300-from-8-goroutines", 8, 300},
	}
	acked := map[string]bool{}
	pids := map[int]bool{}
	for _, r := range rounds {
		ids, pid := runCrashChild(t, dir, r)
		if r.killAfter > 0 && len(ids) < r.killAfter {
			t.Fatalf("round %s: child reported %d publishes before it died", r.name, len(ids))
		}
		for _, id := range ids {
			acked[id] = true
		}
		pids[pid] = true

		st, err := ReadStats(dir)
		if err != nil {
			t.Fatalf("round %s: ReadStats: %v", r.name, err)
		}
		if len(st.Damaged) != 0 || len(st.Held) != 0 {
			t.Fatalf("round %s: ReadStats after SIGKILL: damaged %+v, held %+v", r.name, st.Damaged, st.Held)
		}
		if st.Pending < int64(len(acked)) {
			t.Errorf("round %s: ReadStats counts %d pending, %d were acknowledged", r.name, st.Pending, len(acked))
		}
		for _, name := range segFiles(t, dir) {
			checkBolt(t, filepath.Join(dir, name))
			if !pids[SegmentPID(name)] {
				t.Errorf("round %s: segment %s names pid %d, not a child's", r.name, name, SegmentPID(name))
			}
		}
		got, others := drainView(t, dir)
		if len(others) != 0 {
			t.Errorf("round %s: Claim reported %+v", r.name, others)
		}
		lost := 0
		for id := range acked {
			if _, ok := got[id]; !ok {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("round %s: %d of %d acknowledged events lost", r.name, lost, len(acked))
		}
		t.Logf("round %s: %d acknowledged this round, %d stored in all", r.name, len(ids), len(got))
	}
	// A temporary file left by a child killed while creating its segment
	// is not a segment: it is neither counted nor reported damaged.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	temps := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			temps++
		}
	}
	st, err := ReadStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments != len(ents)-temps {
		t.Errorf("ReadStats counts %d segments; the directory holds %d files, %d of them temporary", st.Segments, len(ents), temps)
	}
	t.Logf("%d temporary files left by kills during Open", temps)
}
