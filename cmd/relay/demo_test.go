package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `relay demo` through the binary: it must deliver every
// event exactly once and in order per key, well within its bound.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := mustOK(t, cli(t, "demo"))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := regexp.MustCompile(`^published 300, delivered 300, lost 0, duplicates 0, order per key kept$`)
	if !want.MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q; output:\n%s\n%s", lines[len(lines)-1], r.stdout, r.stderr)
	}
	if r.took > 30*time.Second {
		t.Fatalf("demo took %v", r.took)
	}
	t.Logf("demo took %v:\n%s", r.took.Round(time.Millisecond), r.stdout)
}
