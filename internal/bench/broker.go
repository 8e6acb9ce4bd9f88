package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// broker is one topic to produce to: on a fresh embedded kfake cluster
// (in this process), or a fresh topic on the external brokers.
type broker struct {
	addrs   []string
	topic   string
	cluster *kfake.Cluster // nil for external brokers
	cl      *kgo.Client    // admin connection, for offsets (and topics)
	adm     *kadm.Client
}

// newBroker returns a broker with an empty topic of c.Partitions
// partitions. name distinguishes the topics of one run on external
// brokers; on kfake every cluster is fresh and the topic is just "bench".
func newBroker(ctx context.Context, c *Config, runID, name string) (*broker, error) {
	b := &broker{}
	if len(c.Brokers) == 0 {
		b.topic = "boltrelay-bench"
		cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(c.Partitions), b.topic))
		if err != nil {
			return nil, fmt.Errorf("bench: start kfake: %w", err)
		}
		b.cluster = cl
		b.addrs = cl.ListenAddrs()
	} else {
		b.topic = "boltrelay-bench-" + runID + "-" + name
		b.addrs = c.Brokers
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ClientID("boltrelay-bench-admin"))
	if err != nil {
		b.close()
		return nil, fmt.Errorf("bench: admin client: %w", err)
	}
	b.cl, b.adm = cl, kadm.NewClient(cl)
	if b.cluster == nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := b.adm.CreateTopic(cctx, int32(c.Partitions), -1, nil, b.topic); err != nil {
			b.close()
			return nil, fmt.Errorf("bench: create topic %s on %v: %w", b.topic, b.addrs, err)
		}
	}
	return b, nil
}

// records returns how many records the topic holds.
func (b *broker) records(ctx context.Context) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start, err := b.adm.ListStartOffsets(cctx, b.topic)
	if err == nil {
		err = start.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("bench: list offsets of %s: %w", b.topic, err)
	}
	end, err := b.adm.ListEndOffsets(cctx, b.topic)
	if err == nil {
		err = end.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("bench: list offsets of %s: %w", b.topic, err)
	}
	var n int64
	end.Each(func(o kadm.ListedOffset) {
		n += o.Offset
		if s, ok := start.Lookup(o.Topic, o.Partition); ok {
			n -= s.Offset
		}
	})
	return n, nil
}

// close deletes an external topic (best effort) and stops a kfake cluster.
func (b *broker) close() {
	if b.adm != nil && b.cluster == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, _ = b.adm.DeleteTopics(ctx, b.topic)
		cancel()
	}
	if b.cl != nil {
		b.cl.Close()
	}
	if b.cluster != nil {
		b.cluster.Close()
	}
}

var errCount = errors.New("bench: count mismatch")
