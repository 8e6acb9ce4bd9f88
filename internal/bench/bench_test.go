package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the whole bench with tiny sizes and checks that the
// result is internally consistent. It asserts no timings: only that every
// measurement ran as asked, counted what it was asked to, and reports
// positive rates and ordered percentiles.
func TestRunSmall(t *testing.T) {
	t.Setenv(fakeRelayEnv, "1") // the child inherits it: the test binary acts as the relay
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var log bytes.Buffer
	cfg := Config{
		Dir:         dir,
		Events:      5000,
		PublishOps:  200,
		PendingOps:  200,
		E2EDuration: 500 * time.Millisecond,
		Concurrency: []int{1, 8},
		RelayBinary: self,
		Log:         &log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}

	// Everything under Dir is gone.
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("Dir not cleaned up: %v %v", ents, err)
	}

	checkSeries := func(s Series, name string, conc, ops int) {
		t.Helper()
		if s.Name != name || s.Concurrency != conc || s.Ops != ops || s.Asked != ops || s.Truncated {
			t.Errorf("series %q: got name %q conc %d ops %d/%d truncated %v; want conc %d ops %d", name, s.Name, s.Concurrency, s.Ops, s.Asked, s.Truncated, conc, ops)
		}
		if !(s.OpsPerSec > 0 && s.Seconds > 0 && s.P50US > 0 && s.P50US <= s.P90US && s.P90US <= s.P99US && s.P99US <= s.MaxUS && s.MeanUS > 0) {
			t.Errorf("series %q: rates or percentiles out of order: %+v", name, s)
		}
	}
	checkSeries(res.Fsync.Append, "fsync 4KiB append", 1, 200)
	checkSeries(res.Fsync.Overwrite, "fsync 4KiB overwrite", 1, 200)
	checkSeries(res.BoltUpdate, "bbolt Update per event", 1, 200)
	if len(res.BoltBatch) != 2 {
		t.Fatalf("bolt batch series: %d", len(res.BoltBatch))
	}
	checkSeries(res.BoltBatch[0], "bbolt Batch c1", 1, 200)
	checkSeries(res.BoltBatch[1], "bbolt Batch c64", 64, 200)
	if len(res.Publish) != 2 {
		t.Fatalf("publish series: %d", len(res.Publish))
	}
	checkSeries(res.Publish[0], "publish c1", 1, 200)
	checkSeries(res.Publish[1], "publish c8", 8, 200)
	checkSeries(res.Pending.None, nameNone, 1, 200)
	checkSeries(res.Pending.Sealed, nameSealed, 1, 200)
	checkSeries(res.Pending.Own, nameOwn, 1, 200)
	checkSeries(res.Pending.NoneOwn, nameNoneOwn, 1, 200)
	if res.Pending.BacklogEvents != 4800 || res.Pending.SealedP99Ratio <= 0 || res.Pending.OwnP99Ratio <= 0 {
		t.Errorf("pending: %+v", res.Pending)
	}

	if res.Ratios.C1P50OverUpdateP50 <= 0 || res.Ratios.C64OverUpdateThroughput != 0 || res.Ratios.C64OverBatchC64Throughput != 0 {
		t.Errorf("ratios (no c64 level measured): %+v", res.Ratios)
	}

	d := res.Drain
	if d.Events != 5000 || d.Relay.Events != 5000 || d.Direct.Events != 5000 || d.Relay.BrokerRecords != 5000 || d.Direct.BrokerRecords != 5000 {
		t.Errorf("drain counts: %+v", d)
	}
	if !(d.Relay.EventsPerSec > 0 && d.Direct.EventsPerSec > 0 && d.Ratio > 0 && d.BuildEventsPerSec > 0) {
		t.Errorf("drain rates: %+v", d)
	}
	if d.DiskBytesBefore <= 0 || d.PendingBytes <= 0 || d.DiskBytesAfter != 0 {
		t.Errorf("drain disk: before %d, pending %d, after %d (want > 0, > 0, 0: the drained segment is deleted)", d.DiskBytesBefore, d.PendingBytes, d.DiskBytesAfter)
	}

	e := res.E2E
	if e.TargetRate != DefaultRate || e.Published != 2500 || e.Acked != 2500 || e.Errors != 0 {
		t.Errorf("e2e counts: %+v", e)
	}
	if !(e.AchievedRate > 0 && e.P50US > 0 && e.P50US <= e.P90US && e.P90US <= e.P99US && e.P99US <= e.MaxUS && e.PublishP50US > 0 && e.ScheduleP99US > 0) {
		t.Errorf("e2e figures: %+v", e)
	}

	x := res.RSS
	if x.Skipped || x.Events != 5000 || x.ExitCode != 0 || x.SegmentFileBytes <= 0 {
		t.Errorf("rss: %+v", x)
	}
	if procStatus && (x.Samples < 1 || x.PeakAnonBytes <= 0 || x.PeakRSSBytes <= 0 || x.RusageMaxRSSBytes <= 0) {
		t.Errorf("rss samples: %+v", x)
	}

	wantTargets := []string{"publish_c1_p50", "publish_c64_vs_update", "publish_c64_vs_batch", "publish_c64_p99", "drain_ratio",
		"e2e_p99", "relay_rss", "pending_p99_sealed", "pending_p99_own", "disk_given_back"}
	var names []string
	for _, tg := range res.Targets {
		names = append(names, tg.Name)
		c64 := strings.HasPrefix(tg.Name, "publish_c64")
		if tg.Skipped != c64 {
			t.Errorf("target %s: skipped %v (only the c64 targets are skipped without a 64 level)", tg.Name, tg.Skipped)
		}
		if tg.Goal == "" || (tg.Op != "<=" && tg.Op != ">=") {
			t.Errorf("target %+v", tg)
		}
	}
	if !slices.Equal(names, wantTargets) {
		t.Errorf("targets %v, want %v", names, wantTargets)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}

	// JSON: one object, documented names, round trip.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, res) {
		t.Errorf("JSON round trip differs:\n%s", b)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	top := []string{"schema_version", "started_at", "duration_seconds", "env", "config", "fsync", "bolt_update", "bolt_batch",
		"publish", "ratios", "drain", "pending", "e2e", "rss", "targets", "notes"}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sort.Strings(top)
	if !slices.Equal(keys, top) {
		t.Errorf("top-level JSON keys %v, want %v", keys, top)
	}
	for path, want := range map[string][]string{
		"drain.relay":  {"events", "seconds", "events_per_sec", "broker_records", "errors"},
		"e2e":          {"p50_us", "p99_us", "max_us", "achieved_rate", "published", "acked"},
		"rss":          {"peak_rss_bytes", "peak_anon_bytes", "peak_file_bytes", "rusage_maxrss_bytes"},
		"fsync.append": {"ops", "ops_per_sec", "p50_us", "p99_us"},
		"ratios":       {"publish_c1_p50_over_update_p50", "publish_c64_over_update_throughput", "publish_c64_over_batch_c64_throughput"},
	} {
		m := obj
		for _, p := range strings.Split(path, ".") {
			m, _ = m[p].(map[string]any)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON %s has no %q", path, k)
			}
		}
	}

	// Table: a line per measurement and per target.
	var tb bytes.Buffer
	if err := res.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	table := tb.String()
	lines := strings.Split(table, "\n")
	wantLines := []string{"fsync 4KiB append", "fsync 4KiB overwrite", "bbolt Update per event", "bbolt Batch c1 ", "bbolt Batch c64",
		"publish c1 ", "publish c8 ", nameNone, nameSealed, nameOwn, nameNoneOwn, "backlog in own segment", "backlog sealed beside",
		"backlog build", "relay drain", "franz-go direct produce", "relay / direct", "backlog on disk", "publish -> broker ack", "relay run --once"}
	wantLines = append(wantLines, wantTargets...)
	for _, w := range wantLines {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("table has no line for %q:\n%s", w, table)
		}
	}
	t.Logf("\n%s", table)
}

// TestJSONFieldsDocumented checks that docs/benchmarks.md names every
// JSON field of Result.
func TestJSONFieldsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Slice || rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] || rt == reflect.TypeFor[time.Time]() {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", rt.Name(), f.Name)
				continue
			}
			if !regexp.MustCompile("^[a-z0-9_]+$").MatchString(name) {
				t.Errorf("%s.%s: JSON name %q is not snake_case", rt.Name(), f.Name, name)
			}
			if !bytes.Contains(doc, []byte("`"+name+"`")) {
				t.Errorf("docs/benchmarks.md does not document `%s` (%s.%s)", name, rt.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Result]())
}

func TestConfigValidate(t *testing.T) {
	c := Defaults(Config{Dir: "x"})
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Events != DefaultEvents || c.Rate != DefaultRate || !slices.Equal(c.Concurrency, DefaultConcurrency) || c.Log == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Dir = "" }, "Dir"},
		{func(c *Config) { c.Events = 1 }, "Events"},
		{func(c *Config) { c.ValueSize = -1 }, "ValueSize"},
		{func(c *Config) { c.Concurrency = []int{0} }, "Concurrency"},
		{func(c *Config) { c.Concurrency = []int{8, 1, 8} }, "twice"},
		{func(c *Config) { c.Rate = -5 }, "Rate"},
		{func(c *Config) { c.Brokers = []string{""} }, "Brokers"},
		{func(c *Config) { c.PhaseTimeout = -time.Second }, "PhaseTimeout"},
	} {
		c := Defaults(Config{Dir: "x"})
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
	}
	if _, err := Run(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("Run without Dir: %v", err)
	}
}

func TestQuantileAndSummary(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	s := summarize("x", ds, time.Second)
	if s.Ops != 100 || s.OpsPerSec != 100 || s.P50US != 50 || s.P90US != 90 || s.P99US != 99 || s.MaxUS != 100 || s.MeanUS != 50.5 {
		t.Fatalf("summary %+v", s)
	}
	if quantile(nil, 0.5) != 0 {
		t.Fatal("quantile of nothing")
	}
}

func TestReadProcMem(t *testing.T) {
	if !procStatus {
		t.Skip("no /proc here")
	}
	m, ok := readProcMem("/proc/self/status")
	if !ok || m.hwm <= 0 || m.anon <= 0 {
		t.Fatalf("%+v %v", m, ok)
	}
	if _, ok := readProcMem(filepath.Join(t.TempDir(), "none")); ok {
		t.Fatal("missing file read")
	}
}

func TestGenDeterministic(t *testing.T) {
	g := newGen(10, 100, 1)
	a, b := g.event(12345, "t"), g.event(12345, "t")
	if !reflect.DeepEqual(a, b) || len(a.ID) != 36 || !strings.HasSuffix(a.ID, "000000003039") {
		t.Fatalf("events differ or bad id: %+v %+v", a, b)
	}
	if g.event(1, "t").ID == a.ID || len(a.Data) != 100 {
		t.Fatalf("ids collide or value size %d", len(a.Data))
	}
	if err := a.Validate(0); err != nil {
		t.Fatal(err)
	}
}
