package bench

import (
	"os"
	"syscall"
)

// fdatasync is what bbolt calls on Linux to commit.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// childMaxRSS returns the peak resident set of an exited child from
// getrusage (ru_maxrss is in KiB on Linux), or 0 if unknown.
func childMaxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

const procStatus = true
