package bench

import "time"

// SchemaVersion is the version of Result's JSON form. Fields are only
// added within a version; a rename or removal makes a new one.
const SchemaVersion = 1

// Result is everything one Run measured. It marshals with encoding/json
// to one object with stable snake_case field names (documented in
// docs/benchmarks.md). Durations are in microseconds (fields ending _us)
// or seconds (_seconds); sizes in bytes.
type Result struct {
	SchemaVersion   int       `json:"schema_version"`
	StartedAt       time.Time `json:"started_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Env             Env       `json:"env"`
	Config          RunConfig `json:"config"`

	// Fsync is the physical limit: write 4 KiB + fdatasync.
	Fsync FsyncResult `json:"fsync"`
	// BoltUpdate is the naive outbox: one bbolt Update (one commit) per
	// event, sequential, default bbolt options.
	BoltUpdate Series `json:"bolt_update"`
	// BoltBatch is bbolt's DB.Batch with its defaults, at concurrency 1
	// and 64.
	BoltBatch []Series `json:"bolt_batch"`
	// Publish is outbox.Publish (one event per call) per concurrency level.
	Publish []Series `json:"publish"`
	// Ratios are the publish ratios the targets are stated in.
	Ratios PublishRatios `json:"ratios"`
	// Drain is the relay draining the backlog against franz-go producing
	// the same records directly.
	Drain Drain `json:"drain"`
	// Pending is Publish latency with the backlog pending and without.
	Pending Pending `json:"pending"`
	// E2E is publish-to-broker-acknowledgement latency at a fixed rate.
	E2E E2E `json:"e2e"`
	// RSS is the relay process's memory while draining a copy of the backlog.
	RSS RSS `json:"rss"`
	// Targets are the performance targets, each met or missed.
	Targets []Target `json:"targets"`
	// Notes explain skipped or truncated measurements.
	Notes []string `json:"notes"`
}

// Env describes where the run happened.
type Env struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Hostname   string `json:"hostname"`
	Dir        string `json:"dir"`
	// Broker is "kfake" (embedded, in this process, sharing its CPUs) or
	// "external".
	Broker  string   `json:"broker"`
	Brokers []string `json:"brokers,omitempty"`
	// LoadStart and LoadEnd say how busy the machine was around the run
	// (Linux only; zero elsewhere): other work on the disk or the CPUs
	// moves every figure.
	LoadStart Load `json:"load_start"`
	LoadEnd   Load `json:"load_end"`
}

// Load is the machine's load at one moment: the 1-minute load average and
// the kernel's pressure stall information (share of the last 60 s in which
// some task waited for CPU or for I/O, in percent).
type Load struct {
	LoadAvg1     float64 `json:"load_avg_1m"`
	CPUSomeAvg60 float64 `json:"cpu_pressure_some_avg60"`
	IOSomeAvg60  float64 `json:"io_pressure_some_avg60"`
	IOFullAvg60  float64 `json:"io_pressure_full_avg60"`
}

// RunConfig is the configuration the run used, defaults applied.
type RunConfig struct {
	Events             int     `json:"events"`
	ValueSize          int     `json:"value_size"`
	RecordBytes        int     `json:"record_bytes"`
	Partitions         int     `json:"partitions"`
	Keys               int     `json:"keys"`
	BatchSize          int     `json:"batch_size"`
	Rate               int     `json:"rate"`
	E2EDurationSeconds float64 `json:"e2e_duration_seconds"`
	PublishOps         int     `json:"publish_ops"`
	PendingOps         int     `json:"pending_ops"`
	Concurrency        []int   `json:"concurrency"`
	PhaseTimeoutSecs   float64 `json:"phase_timeout_seconds"`
	RelayBinary        string  `json:"relay_binary,omitempty"`
}

// Series is one measured series of calls: Ops calls spread over
// Concurrency goroutines, each call timed on its own.
type Series struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	// Ops is the number of calls made (and timed); Asked the number
	// requested. They differ only when Truncated.
	Ops   int `json:"ops"`
	Asked int `json:"asked"`
	// Truncated: the series hit PhaseTimeout before Asked calls.
	Truncated bool    `json:"truncated"`
	Seconds   float64 `json:"seconds"`
	// OpsPerSec is Ops / Seconds: calls (= events, one per call) per second.
	OpsPerSec float64 `json:"ops_per_sec"`
	MeanUS    float64 `json:"mean_us"`
	P50US     float64 `json:"p50_us"`
	P90US     float64 `json:"p90_us"`
	P99US     float64 `json:"p99_us"`
	MaxUS     float64 `json:"max_us"`
}

// FsyncResult is the raw write+fdatasync rate of 4 KiB blocks.
type FsyncResult struct {
	// Append writes a fresh 4 KiB block at the end of the file each time
	// (the file grows, so the inode's size is synced too).
	Append Series `json:"append"`
	// Overwrite rewrites one 4 KiB block in place each time.
	Overwrite Series `json:"overwrite"`
}

// PublishRatios are the ratios the publish targets are stated in; 0 when
// a level they need was not measured.
type PublishRatios struct {
	// C1P50OverUpdateP50 is Publish p50 at concurrency 1 over the p50 of
	// one bbolt Update per event.
	C1P50OverUpdateP50 float64 `json:"publish_c1_p50_over_update_p50"`
	// C64OverUpdateThroughput is Publish throughput at concurrency 64 over
	// the Update-per-event throughput.
	C64OverUpdateThroughput float64 `json:"publish_c64_over_update_throughput"`
	// C64OverBatchC64Throughput is Publish throughput at concurrency 64
	// over DB.Batch's at 64.
	C64OverBatchC64Throughput float64 `json:"publish_c64_over_batch_c64_throughput"`
}

// Throughput is one side of the drain comparison.
type Throughput struct {
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// BrokerRecords is what the broker holds on the topic afterwards (sum
	// of end minus start offsets), a check that everything arrived.
	BrokerRecords int64 `json:"broker_records"`
	// Errors is produce errors seen (franz-go) or events parked (relay).
	Errors int64 `json:"errors"`
}

// Drain is the relay draining a backlog of sealed segments.
type Drain struct {
	Events int `json:"events"`
	// BuildSeconds and BuildEventsPerSec: building the backlog with
	// Publish calls of BatchSize events (no relay running).
	BuildSeconds      float64 `json:"build_seconds"`
	BuildEventsPerSec float64 `json:"build_events_per_sec"`
	// DiskBytesBefore is the size of the backlog's files before the drain,
	// DiskBytesAfter what is left once the relay returned.
	DiskBytesBefore int64 `json:"disk_bytes_before"`
	DiskBytesAfter  int64 `json:"disk_bytes_after"`
	// PendingBytes is the stored size of the pending events (outbox
	// stats), for comparison with DiskBytesBefore.
	PendingBytes int64 `json:"pending_bytes"`
	// Relay: relay.Once on outbox.Open(dir, WithoutWriter()), from Run's
	// start to its return.
	Relay Throughput `json:"relay"`
	// Direct: a franz-go client producing the same records itself.
	Direct Throughput `json:"direct"`
	// Ratio is Relay.EventsPerSec / Direct.EventsPerSec.
	Ratio float64 `json:"ratio"`
}

// Pending compares single-event Publish latency with the backlog pending
// and without.
type Pending struct {
	// BacklogEvents is the number of events pending while the backlog
	// series were measured.
	BacklogEvents int `json:"backlog_events"`
	// Own: the backlog writer's own segment, with the backlog pending in
	// it (the last PendingOps events of the backlog, one per call), its
	// calls alternating with those of NoneOwn, into an empty outbox.
	Own     Series `json:"own"`
	NoneOwn Series `json:"none_own"`
	// Sealed: a new writer in the directory that holds the backlog in a
	// sealed segment (the backlog writer closed), its calls alternating
	// with those of None, into an empty outbox.
	Sealed Series `json:"sealed"`
	None   Series `json:"none"`
	// OwnP99Ratio is Own's p99 over NoneOwn's; SealedP99Ratio is Sealed's
	// over None's.
	OwnP99Ratio    float64 `json:"own_p99_ratio"`
	SealedP99Ratio float64 `json:"sealed_p99_ratio"`
}

// E2E is end-to-end latency: from just before Publish to the broker's
// acknowledgement of the record, with an embedded relay.
type E2E struct {
	TargetRate int `json:"target_rate"`
	// Workers is the bound on concurrent Publish calls of the pacer.
	Workers int `json:"workers"`
	// Published events (one per call) and Acked of them (acknowledged by
	// the broker before the wait ended).
	Published int   `json:"published"`
	Acked     int   `json:"acked"`
	Errors    int64 `json:"errors"`
	// Seconds is the publish phase; AchievedRate is Published / Seconds.
	Seconds      float64 `json:"seconds"`
	AchievedRate float64 `json:"achieved_rate"`
	// Latency from just before Publish to the acknowledgement.
	P50US float64 `json:"p50_us"`
	P90US float64 `json:"p90_us"`
	P99US float64 `json:"p99_us"`
	MaxUS float64 `json:"max_us"`
	// ScheduleP99US is p99 measured from the time the pacer scheduled the
	// event instead (includes any wait for a free worker).
	ScheduleP99US float64 `json:"schedule_p99_us"`
	// PublishP50US and PublishP99US time the Publish call alone.
	PublishP50US float64 `json:"publish_p50_us"`
	PublishP99US float64 `json:"publish_p99_us"`
}

// RSS is the memory of a relay process (`relay run --once`) draining a
// copy of the backlog, from /proc/<pid>/status sampled every 50 ms.
type RSS struct {
	Skipped bool   `json:"skipped"`
	Reason  string `json:"reason,omitempty"`
	Binary  string `json:"binary,omitempty"`
	Events  int    `json:"events"`
	// Seconds is the child's wall time, process start to exit.
	Seconds float64 `json:"seconds"`
	// PeakRSSBytes is the child's peak resident set (VmHWM of its own
	// address space, at the last sample): anonymous memory plus the
	// resident pages of mapped files, the mmapped bbolt segment included.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// PeakAnonBytes (RssAnon: heap, stacks) and PeakFileBytes (RssFile:
	// the bbolt mmap, the binary's text) are the largest values sampled;
	// the two peaks need not coincide.
	PeakAnonBytes int64 `json:"peak_anon_bytes"`
	PeakFileBytes int64 `json:"peak_file_bytes"`
	Samples       int   `json:"samples"`
	// RusageMaxRSSBytes is getrusage's ru_maxrss for the child. On Linux it
	// is not the child's own peak: Go starts children with vfork, and exec
	// records the parent's (this bench's) peak RSS in the child's maxrss.
	// Kept for reference only.
	RusageMaxRSSBytes int64 `json:"rusage_maxrss_bytes"`
	// SegmentFileBytes is the size of the segment file(s) drained.
	SegmentFileBytes int64 `json:"segment_file_bytes"`
	ExitCode         int   `json:"exit_code"`
}

// Target is one of the targets with what was measured.
type Target struct {
	Name string `json:"name"`
	// Goal is the target as stated, for people.
	Goal string `json:"goal"`
	// Value is what was measured and Limit the bound it is held to; Op is
	// "<=" or ">=" (Value Op Limit means met).
	Value float64 `json:"value"`
	Op    string  `json:"op"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	// Skipped: not measured in this run (Value and Met mean nothing).
	Skipped bool `json:"skipped"`
	// Margin is Value / Limit.
	Margin float64 `json:"margin"`
}
