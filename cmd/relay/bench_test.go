package main

import (
	"os/exec"
	"testing"
)

// BenchmarkPublishProcess measures what a hook pays per event: a whole
// `relay publish` process, from exec to the event durable and the process
// gone (binary built without -race when the benchmark runs without it).
func BenchmarkPublishProcess(b *testing.B) {
	dir := b.TempDir()
	env := cleanEnv()
	for b.Loop() {
		cmd := exec.Command(relayBin, "publish", "--outbox", dir, "--topic", "bench", "--key", "k", "--value", "hello")
		cmd.Env = env
		if err := cmd.Run(); err != nil { // stdout to /dev/null: no pipe to drain
			b.Fatal(err)
		}
	}
}
