package outbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenBadInput(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open on a regular file: %v, want an error naming %s", err, file)
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	for _, c := range []struct {
		opt  Option
		name string
	}{
		{LockTimeout(0), "LockTimeout"},
		{LockTimeout(-time.Second), "LockTimeout"},
		{MaxEventBytes(-1), "MaxEventBytes"},
		{MaxPendingBytes(-1), "MaxPendingBytes"},
		{MaxPendingEvents(-1), "MaxPendingEvents"},
	} {
		dir := filepath.Join(tmp, "opt-"+c.name)
		if _, err := Open(dir, c.opt); err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("Open with a bad %s: %v, want an error naming it", c.name, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Open with a bad %s created %s", c.name, dir)
		}
		if _, err := ReadStats(tmp, c.opt); err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("ReadStats with a bad %s: %v", c.name, err)
		}
	}

	missing := filepath.Join(tmp, "missing")
	if _, err := Dump(missing, DumpOptions{Pending: true}, func(Record) error { return nil }); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Dump on a missing directory: %v", err)
	}
	if _, err := ReadStats(missing); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadStats on a missing directory: %v", err)
	}
	if _, err := Requeue(missing, nil); err == nil {
		t.Error("Requeue on a missing directory succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("inspection created %s: %v", missing, err)
	}
	if _, err := ReadStats(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("ReadStats on a regular file: %v", err)
	}
}

func TestOpenCreatesPrivateDirAndSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	o := openT(t, dir)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox directory: %v, %v; want a 0700 directory", fi.Mode(), err)
	}
	sfi, err := os.Stat(o.Own().Path())
	if err != nil || sfi.Mode().Perm() != 0o600 {
		t.Fatalf("segment file: %v, %v; want 0600", sfi.Mode(), err)
	}
	name := o.Own().Name()
	if !isSegmentName(name) || SegmentPID(name) != os.Getpid() || filepath.Dir(o.Own().Path()) != dir || o.Dir() != dir {
		t.Errorf("segment %s in %s", name, o.Own().Path())
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("directory after Open: %v, %v; want only the segment (no temporary file)", ents, err)
	}
	// Two writers in one directory get two segments.
	o2 := openT(t, dir)
	if o2.Own().Name() == name {
		t.Error("two writers share a segment")
	}
}

// Stale temporary files are removed by Claim (the relay's scan), not by
// every writer's Open, which must not read the whole directory.
func TestClaimRemovesOnlyStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, tmpPrefix+newSegmentName(time.Now()))
	fresh := filepath.Join(dir, tmpPrefix+newSegmentName(time.Now()))
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half-made"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	o := openT(t, dir)
	if !fileExists(stale) {
		t.Error("Open read the directory to remove a stale temporary file")
	}
	segs, others, err := o.Claim()
	if err != nil || len(segs) != 1 || len(others) != 0 {
		t.Errorf("Claim with a temporary file around: %v %+v %v", segs, others, err)
	}
	if fileExists(stale) {
		t.Error("a stale temporary segment was not removed")
	}
	if !fileExists(fresh) {
		t.Error("a fresh temporary segment (its creator may still be renaming it) was removed")
	}
}

func TestSegmentNames(t *testing.T) {
	a := newSegmentName(time.Unix(0, 5))
	b := newSegmentName(time.Unix(0, 40))
	if !(a < b) || !isSegmentName(a) || SegmentPID(a) != os.Getpid() {
		t.Errorf("names %s, %s: want sortable by creation time, carrying pid %d", a, b, os.Getpid())
	}
	if isSegmentName(tmpPrefix+a) || isSegmentName("seg-x.db") {
		t.Error("isSegmentName accepts what is not a segment")
	}
	for _, n := range []string{"", "seg-.seg", "seg-1-h-notapid-x.seg", "other"} {
		if SegmentPID(n) != 0 {
			t.Errorf("SegmentPID(%q) = %d, want 0", n, SegmentPID(n))
		}
	}
	if got := sanitizeHost("my host/../é-1"); got != "myhost..1" {
		t.Errorf("sanitizeHost = %q", got)
	}
	if got := sanitizeHost("///"); got != "host" {
		t.Errorf("sanitizeHost of nothing usable = %q", got)
	}
}
