package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// profiler writes one CPU profile per phase into dir; with no dir it does
// nothing.
type profiler struct {
	dir   string
	log   io.Writer
	notes *[]string
}

// start begins the CPU profile of phase and returns the function that
// ends it. A profile that cannot start (another one is running, as under
// go test -cpuprofile) is noted and skipped.
func (p *profiler) start(phase string) func() {
	if p == nil || p.dir == "" {
		return func() {}
	}
	path := filepath.Join(p.dir, phase+".pprof")
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}
	if err != nil {
		*p.notes = append(*p.notes, fmt.Sprintf("no CPU profile of %s: %v", phase, err))
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		fmt.Fprintf(p.log, "bench: CPU profile of %s in %s\n", phase, path)
	}
}
