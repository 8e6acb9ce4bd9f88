//go:build linux || darwin || freebsd

package outbox

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// dropPages tells the kernel this process no longer needs the segment's
// mapped pages resident. bbolt maps the file MAP_SHARED and PROT_READ and
// writes through the file descriptor, so MADV_DONTNEED only drops this
// process's page-table entries: the data stays in the page cache and on
// disk, and a later access faults it back in. Without it, a relay draining
// a large segment grows its resident set to the file's size even though it
// streams. It must run inside a read transaction, which holds bbolt's mmap
// lock, so the mapping cannot move meanwhile.
func dropPages(tx *bolt.Tx, db *bolt.DB) {
	size := tx.Size()
	if size <= 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, db.Info().Data, uintptr(size), unix.MADV_DONTNEED)
}
