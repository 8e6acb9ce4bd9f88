package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

const blockSize = 4096

// measureFsync times pwrite + fdatasync of 4 KiB blocks in a fresh file
// under dir: appended (the file grows by one block per call) and
// overwritten in place. This is the disk's commit rate, the floor under
// every durable write above it.
func measureFsync(ctx context.Context, dir string, c *Config) (FsyncResult, error) {
	var res FsyncResult
	block := make([]byte, blockSize)
	for i := range block {
		block[i] = byte(i * 7)
	}
	for _, mode := range []string{"append", "overwrite"} {
		path := filepath.Join(dir, "fsync-"+mode+".dat")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return res, fmt.Errorf("bench: fsync: %w", err)
		}
		if mode == "overwrite" {
			// Allocate the block first, so every timed call rewrites it.
			_, err = f.WriteAt(block, 0)
			if err == nil {
				err = fdatasync(f)
			}
			if err != nil {
				_ = f.Close()
				return res, fmt.Errorf("bench: fsync: %w", err)
			}
		}
		s, err := runSeries(ctx, "fsync 4KiB "+mode, c.PublishOps, 1, c.PhaseTimeout, func(_, i int) error {
			off := int64(0)
			if mode == "append" {
				off = int64(i) * blockSize
			}
			block[0] = byte(i)
			if _, err := f.WriteAt(block, off); err != nil {
				return err
			}
			return fdatasync(f)
		})
		_ = f.Close()
		_ = os.Remove(path)
		if err != nil {
			return res, fmt.Errorf("bench: fsync %s: %w", mode, err)
		}
		if mode == "append" {
			res.Append = s
		} else {
			res.Overwrite = s
		}
	}
	return res, nil
}
