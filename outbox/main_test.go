package outbox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// outbox starts none of its own (group commit moves leadership between
// callers), so anything left running is a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
