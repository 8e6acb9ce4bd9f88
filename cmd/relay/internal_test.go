package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/boltrelay/boltrelay/relay"
)

// A panic inside a command is one line and exit 1, never a stack trace.
func TestPanicIsOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	root := newRootCmd(e)
	root.AddCommand(&cobra.Command{Use: "boom", RunE: func(*cobra.Command, []string) error {
		var m map[string]int
		m["x"]++ // a nil map write: a runtime panic, as a bug would be
		return nil
	}})
	code := executeRoot(root, []string{"boom"}, e)
	if code != exitError || stderr.String() != "relay: internal error: assignment to entry in nil map\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"outbox: open /x/seg: outbox: segment is damaged: bad", "open /x/seg: segment is damaged: bad"},
		{"a\nb\n\tc", "a; b; c"},
		{"relay: events still pending: topic \"t\": X", "events still pending: topic \"t\": X"},
		{"outbox: full (a; outbox: b)", "full (a; b)"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	joined := errors.Join(errors.New("first"), fmt.Errorf("outbox: second"))
	if got := oneLine(joined.Error()); got != "first; second" {
		t.Errorf("joined: %q", got)
	}
}

// The demo's verdict must be able to fail: loss, duplicates and disorder
// are each detected.
func TestDemoVerify(t *testing.T) {
	ids := demoIDs{"a": 0, "b": 1, "c": 2, "d": 3}
	rec := func(id string, seq int, key string) *kgo.Record {
		return &kgo.Record{Topic: "t", Key: []byte(key), Headers: []kgo.RecordHeader{
			{Key: relay.HeaderID, Value: []byte(id)}, {Key: demoSeqHeader, Value: []byte(strconv.Itoa(seq))}}}
	}
	for _, tc := range []struct {
		name string
		recs []*kgo.Record
		want demoVerdict
	}{
		{"all", []*kgo.Record{rec("a", 0, "x"), rec("b", 1, "y"), rec("c", 2, "x"), rec("d", 3, "y")}, demoVerdict{delivered: 4}},
		{"lost", []*kgo.Record{rec("a", 0, "x"), rec("c", 2, "x")}, demoVerdict{delivered: 2, lost: 2}},
		{"duplicate", []*kgo.Record{rec("a", 0, "x"), rec("c", 2, "x"), rec("a", 0, "x"), rec("b", 1, "y"), rec("d", 3, "y")}, demoVerdict{delivered: 4, duplicates: 1}},
		{"disorder", []*kgo.Record{rec("c", 2, "x"), rec("a", 0, "x"), rec("b", 1, "y"), rec("d", 3, "y")}, demoVerdict{delivered: 4, outOfOrder: 1}},
		{"other keys interleave", []*kgo.Record{rec("b", 1, "y"), rec("a", 0, "x"), rec("d", 3, "y"), rec("c", 2, "x")}, demoVerdict{delivered: 4}},
	} {
		if got := ids.verify(tc.recs); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
