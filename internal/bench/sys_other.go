//go:build !linux

package bench

import "os"

// fdatasync falls back to fsync where the platform has no fdatasync in
// package syscall.
func fdatasync(f *os.File) error { return f.Sync() }

// childMaxRSS is unknown here: ru_maxrss has other units on other systems.
func childMaxRSS(*os.ProcessState) int64 { return 0 }

const procStatus = false
