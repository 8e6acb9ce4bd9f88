package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Segment file names: seg-<unix nanos, 20 digits>-<host>-<pid>-<rand>.seg
//
// The zero-padded creation time first makes lexical order creation order,
// so one writer's segments (and, roughly, everyone's) drain oldest first.
// Host and pid name the writer for operators ("held by pid 4711") and keep
// names from colliding across machines sharing a directory; the random
// suffix keeps them apart when a pid is reused within one nanosecond tick.
const (
	segPrefix = "seg-"
	segSuffix = ".seg"
	tmpPrefix = ".tmp-"
)

func newSegmentName(now time.Time) string {
	host, _ := os.Hostname()
	host = sanitizeHost(host)
	var r [3]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s%020d-%s-%d-%s%s", segPrefix, now.UnixNano(), host, os.Getpid(), hex.EncodeToString(r[:]), segSuffix)
}

func sanitizeHost(h string) string {
	var b strings.Builder
	for _, r := range h {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' {
			b.WriteRune(r)
		}
		if b.Len() >= 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "host"
	}
	return b.String()
}

// isSegmentName reports whether name is a (renamed-into-place) segment.
func isSegmentName(name string) bool {
	return strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, segSuffix)
}

// SegmentPID returns the writer pid embedded in a segment name, or 0.
func SegmentPID(name string) int {
	parts := strings.Split(strings.TrimSuffix(name, segSuffix), "-")
	if len(parts) < 5 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// listSegments returns the segment file names in dir in drain order.
func listSegments(dir string) ([]string, error) {
	names, _, err := scanDir(dir)
	return names, err
}

// scanDir reads dir once and returns the segment file names in drain order
// and the temporary files (segments being created, or left by a writer
// that died while creating one).
func scanDir(dir string) (segs []string, temps []os.DirEntry, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: read directory %s: %w", dir, err)
	}
	for _, e := range ents {
		switch {
		case e.Type().IsRegular() && isSegmentName(e.Name()):
			segs = append(segs, e.Name())
		case strings.HasPrefix(e.Name(), tmpPrefix):
			temps = append(temps, e)
		}
	}
	sort.Strings(segs)
	return segs, temps, nil
}

// ensureDir creates dir (0700) if missing and checks that it is a directory.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("outbox: %s is not a directory", dir)
	case err == nil:
		return nil
	case !os.IsNotExist(err):
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("outbox: create directory: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// removeStaleTemps deletes temporary segment files left by writers that died
// while creating one. A temp file is stale when it is older than a minute:
// creation takes milliseconds, and a file that old whose creator still
// lives would be renamed away from under nobody (the creator holds its own
// descriptor, and the rename of a removed name fails loudly).
func removeStaleTemps(dir string, temps []os.DirEntry, now time.Time) {
	for _, e := range temps {
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > time.Minute {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
