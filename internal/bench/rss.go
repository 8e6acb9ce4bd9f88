package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampleEvery is how often the child's /proc/<pid>/status is read.
const rssSampleEvery = 50 * time.Millisecond

// measureRSS drains dir with `c.RelayBinary run --once` as a child process
// and reports its peak resident set from /proc/<pid>/status samples taken
// while it ran: VmHWM, and the peaks of RssAnon and RssFile (bbolt reads
// the segment through an mmap, and the pages it touched count as resident
// until reclaimed). getrusage's maxrss is recorded too, but on Linux it
// holds this process's own peak (see RSS.RusageMaxRSSBytes).
func measureRSS(ctx context.Context, c *Config, dir string, b *broker, want int) (RSS, error) {
	res := RSS{Binary: c.RelayBinary, Events: want, SegmentFileBytes: dirBytes(dir)}
	before, err := b.records(ctx)
	if err != nil {
		return res, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.DrainTimeout)
	defer cancel()
	cmd := exec.CommandContext(dctx, c.RelayBinary, "run", "--once", "--outbox", dir,
		"--brokers", strings.Join(b.addrs, ","), "--log-level", "warn")
	var stderr tailBuffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("bench: rss: start %s: %w", c.RelayBinary, err)
	}
	var (
		done    = make(chan struct{})
		sampled sync.WaitGroup
		peak    procMem
		samples int
	)
	if procStatus {
		sampled.Add(1)
		go func() {
			defer sampled.Done()
			t := time.NewTicker(rssSampleEvery)
			defer t.Stop()
			path := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
			for {
				if m, ok := readProcMem(path); ok {
					samples++
					peak.hwm = max(peak.hwm, m.hwm)
					peak.anon = max(peak.anon, m.anon)
					peak.file = max(peak.file, m.file)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
	}
	waitErr := cmd.Wait()
	close(done)
	sampled.Wait()
	res.Seconds = round3(time.Since(start).Seconds())
	res.Samples = samples
	res.PeakRSSBytes, res.PeakAnonBytes, res.PeakFileBytes = peak.hwm, peak.anon, peak.file
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
		res.RusageMaxRSSBytes = childMaxRSS(cmd.ProcessState)
	}
	if waitErr != nil {
		return res, fmt.Errorf("bench: rss: %s run --once: %w; output: %s", c.RelayBinary, waitErr, stderr.String())
	}
	after, err := b.records(ctx)
	if err != nil {
		return res, err
	}
	if after-before != int64(want) {
		return res, fmt.Errorf("%w: rss: relay process delivered %d records, backlog %d", errCount, after-before, want)
	}
	return res, nil
}

type procMem struct{ hwm, anon, file int64 }

// readProcMem reads VmHWM, RssAnon and RssFile (kB) from a status file.
func readProcMem(path string) (procMem, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return procMem{}, false
	}
	var m procMem
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var p *int64
		switch k {
		case "VmHWM":
			p = &m.hwm
		case "RssAnon":
			p = &m.anon
		case "RssFile":
			p = &m.file
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		*p = n * 1024
		found++
	}
	return m, found > 0
}

// tailBuffer keeps the last 4 KiB written to it, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
