package bench

import (
	"os"
	"strconv"
	"strings"
)

// readLoad reads the load average and pressure stall information from
// /proc; what is missing stays zero.
func readLoad() Load {
	var l Load
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			l.LoadAvg1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	l.CPUSomeAvg60, _ = psi("cpu", "some")
	l.IOSomeAvg60, _ = psi("io", "some")
	l.IOFullAvg60, _ = psi("io", "full")
	return l
}

// psi returns avg60 of the kind ("some" or "full") line of
// /proc/pressure/<res>.
func psi(res, kind string) (float64, bool) {
	b, err := os.ReadFile("/proc/pressure/" + res)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != kind {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "avg60="); ok {
				x, err := strconv.ParseFloat(v, 64)
				return x, err == nil
			}
		}
	}
	return 0, false
}
