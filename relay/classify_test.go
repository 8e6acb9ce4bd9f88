package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// S11: an outage read as a permanent error parks or drops data. Every
// error franz-go hands a produce promise must land in its documented
// class, bare and wrapped.
func TestClassify(t *testing.T) {
	// A real dial error: connect to a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, dialErr := net.DialTimeout("tcp", addr, time.Second)
	if dialErr == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	deadline, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-deadline.Done()

	cases := []struct {
		err  error
		want Class
	}{
		{dialErr, Transient},
		{kerr.NotLeaderForPartition, Transient},
		{kerr.RequestTimedOut, Transient},
		{kerr.LeaderNotAvailable, Transient},
		{kerr.NotEnoughReplicas, Transient},
		{kerr.NotEnoughReplicasAfterAppend, Transient},
		{kerr.NetworkException, Transient},
		{kgo.ErrClientClosed, Transient},
		{kgo.ErrRecordTimeout, Transient},
		{kgo.ErrRecordRetries, Transient},
		{context.Canceled, Transient},
		{deadline.Err(), Transient},
		{errors.New("something nobody has seen"), Transient},
		{kerr.UnknownTopicOrPartition, Waiting},
		{kerr.TopicAuthorizationFailed, Waiting},
		{kerr.ClusterAuthorizationFailed, Waiting},
		{kerr.MessageTooLarge, TooLarge},
		{kerr.RecordListTooLarge, TooLarge},
		{kerr.InvalidTopicException, Permanent},
		{kerr.InvalidRecord, Permanent},
		{kerr.PolicyViolation, Permanent},
	}
	for _, c := range cases {
		for _, e := range []error{c.err, fmt.Errorf("produce to %q: %w", "topic", c.err), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", c.err))} {
			if got := Classify(e); got != c.want {
				t.Errorf("Classify(%v) = %v, want %v", e, got, c.want)
			}
		}
	}
}
