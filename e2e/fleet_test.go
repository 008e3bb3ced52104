package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/internal/natstest"
)

// The fleet of these tests: 3 NATS servers clustered on loopback, agents
// named h1, h2, ... with the same detectors, monitor and sink, 16
// partitions, leases of 2 s and checkpoints every second.
const (
	fleetName       = "driftd"
	fleetPartitions = 16
	fleetLeaseTTL   = 2 * time.Second
	fleetModel      = "fm"
	fleetVersions   = 200 // model versions pushed
	fleetValues     = 200 // values of each model version
	fleetChunks     = 4   // bodies pushed, each with a quarter of every version's values
	fleetSettle     = 90 * time.Second
)

// fleetDetector is a Page-Hinkley detector: its state depends on every
// value since the last drift, so a partition's new owner must rebuild it
// exactly to raise the drifts an uninterrupted run raises.
const fleetDetector = `
detector "pagehinkley" "acc" {
  metric = "accuracy"
  config {
    mode      = "down"
    delta     = 0.005
    threshold = 1
  }
}
`

// fleetMonitor watches every version of fleetModel with a window that
// holds all of its values; with sinks, every drift makes a job.
func fleetMonitor(sinks ...string) string {
	s := ""
	if len(sinks) > 0 {
		s = fmt.Sprintf("  sinks     = [%s]\n  cooldown  = \"0s\"\n", quoteList(sinks))
	}
	return fmt.Sprintf(`
monitor %q {
  versions  = ["*"]
  window    = 1000
  detectors = ["pagehinkley.acc"]
%s}
`, fleetModel, s)
}

// clusterBlock is the cluster block of agent instance in the fleet of
// servers, with a spool of spoolMax.
func clusterBlock(servers []string, instance, spoolMax string) string {
	return fmt.Sprintf(`
cluster {
  servers             = [%s]
  name                = %q
  instance            = %q
  partitions          = %d
  replicas            = 3
  lease_ttl           = %q
  checkpoint_interval = "1s"
  spool {
    max_bytes = %q
  }
}
`, quoteList(servers), fleetName, instance, fleetPartitions, fleetLeaseTTL.String(), spoolMax)
}

// fleetData is what the tests push: fleetVersions versions of fleetModel,
// each an accuracy near 0.92 that drops to near 0.70 at its own index.
type fleetData struct {
	versions []string
	values   [][]float64
}

func newFleetData() fleetData {
	var d fleetData
	for v := range fleetVersions {
		rng := rand.New(rand.NewPCG(uint64(v), 14))
		drop := 50 + (v*37)%100
		vals := make([]float64, fleetValues)
		for i := range vals {
			base := 0.92
			if i >= drop {
				base = 0.70
			}
			vals[i] = min(1, max(0, base+0.01*rng.NormFloat64()))
		}
		d.versions = append(d.versions, fmt.Sprintf("v%03d", v))
		d.values = append(d.values, vals)
	}
	return d
}

// body is the k-th of fleetChunks NDJSON bodies: for every version in
// turn, its values of the k-th quarter, in order.
func (d fleetData) body(k int) []byte { return d.bodyOf(k, nil) }

// bodyOf is body of the versions whose index keep keeps; every one when
// keep is nil.
func (d fleetData) bodyOf(k int, keep func(v int) bool) []byte {
	from, to := k*fleetValues/fleetChunks, (k+1)*fleetValues/fleetChunks
	var b bytes.Buffer
	for v, version := range d.versions {
		if keep != nil && !keep(v) {
			continue
		}
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `{"model":%q,"version":%q,"timestamp":%q,"accuracy":%s}`+"\n",
				fleetModel, version, baseTime.Add(time.Duration(i)*time.Second).Format(time.RFC3339), num(d.values[v][i]))
		}
	}
	return b.Bytes()
}

func (d fleetData) linesPerBody() int { return len(d.versions) * fleetValues / fleetChunks }

// driftKey names a drift: model, version, metric, detector and index.
func driftKey(e event) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d", e.Model, e.Version, e.Metric, e.Detector, e.idx())
}

// fleetReference is the drift set `driftd backtest` gives over every body,
// computed once.
var fleetReference struct {
	once sync.Once
	keys map[string]bool
	out  string
}

func referenceDrifts(t *testing.T, d fleetData) map[string]bool {
	t.Helper()
	fleetReference.once.Do(func() {
		dir := tempDir(t)
		var all []byte
		for k := range fleetChunks {
			all = append(all, d.body(k)...)
		}
		file := writeFile(t, filepath.Join(dir, "fleet.ndjson"), all)
		cfg := writeConfig(t, dir, filepath.Join(dir, "unused.sock"), "", fleetDetector+fleetMonitor())
		code, stdout, stderr := run(t, dir, nil, "backtest", "-config", cfg, "-type", "drift", file)
		if code != 0 {
			t.Fatalf("driftd backtest: exit %d\n%s", code, stderr)
		}
		keys := map[string]bool{}
		for _, e := range parseEvents(t, stdout) {
			keys[driftKey(e)] = true
		}
		fleetReference.keys, fleetReference.out = keys, stderr
	})
	if len(fleetReference.keys) < fleetVersions {
		t.Fatalf("backtest raised %d drifts over %d versions that all drop, want one at least for each: %s",
			len(fleetReference.keys), fleetVersions, fleetReference.out)
	}
	return fleetReference.keys
}

// fleet is a running fleet: the NATS cluster, its agents, the webhook
// receiver of their jobs and the data pushed.
type fleet struct {
	nats   *natstest.Cluster
	recv   *receiver
	agents map[string]*agent // by instance
	data   fleetData
	want   map[string]bool // the drifts backtest raises
	pushed map[string]int  // values pushed per version
	start  time.Time
	sub    *eventStream // drift events on h3
	// own, when set, replaces sub: per instance, drift events on that
	// host, of which the drifts it raised count (a host sees the fleet's
	// events from when it joined).
	own    map[string]*eventStream
	drifts []event // the drift events sub has brought so far
}

// startFleet starts 3 NATS servers, a receiver, and agents h1..hn.
func startFleet(t *testing.T, n int) *fleet {
	t.Helper()
	requireE2E(t)
	f := &fleet{data: newFleetData(), agents: map[string]*agent{}, pushed: map[string]int{}, start: time.Now()}
	f.want = referenceDrifts(t, f.data)
	f.nats = natstest.StartCluster(t, 3)
	f.recv = startReceiver(t, "", "")
	for i := range n {
		f.add(t, fmt.Sprintf("h%d", i+1), "64MiB")
	}
	f.sub = f.agents["h3"].subscribe(t, "type=drift")
	t.Logf("NATS cluster and %d agents up in %v", n, time.Since(f.start).Round(time.Millisecond))
	return f
}

// add starts agent instance with a spool of spoolMax.
func (f *fleet) add(t *testing.T, instance, spoolMax string) *agent {
	t.Helper()
	body := fleetDetector + webhookSink("retrain", f.recv.url(), "") + fleetMonitor("webhook.retrain") +
		clusterBlock(f.nats.URLs(), instance, spoolMax)
	a := startAgentWith(t, agentOptions{body: body})
	f.agents[instance] = a
	return a
}

// push pushes body k to a with curl; every line must be accepted.
func (f *fleet) push(t *testing.T, a *agent, k int) {
	t.Helper()
	code, body := curlPush(t, a.socket, f.data.body(k))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != f.data.linesPerBody() || ans.Rejected != 0 {
		t.Fatalf("push body %d: %d %s, want 200 and %d accepted", k, code, body, f.data.linesPerBody())
	}
	for _, v := range f.data.versions {
		f.pushed[v] += fleetValues / fleetChunks
	}
}

// fleetStatus is the "fleet" part of GET /v1/status.
type fleetStatus struct {
	Name         string `json:"name"`
	Instance     string `json:"instance"`
	Partitions   int    `json:"partitions"`
	Joined       bool   `json:"joined"`
	JoinError    string `json:"join_error"`
	JoinAttempts int    `json:"join_attempts"`
	Connected    bool   `json:"connected"`
	Server       string `json:"server"`
	Members      []struct {
		Instance   string    `json:"instance"`
		Since      time.Time `json:"since"`
		Partitions []int     `json:"partitions"`
	} `json:"members"`
	Owned []struct {
		Partition      int       `json:"partition"`
		AppliedSeq     uint64    `json:"applied_seq"`
		Lines          uint64    `json:"lines"`
		Pending        uint64    `json:"pending_messages"`
		CheckpointSeq  uint64    `json:"checkpoint_seq"`
		CheckpointTime time.Time `json:"checkpoint_time"`
	} `json:"owned"`
	Spool struct {
		Bytes    int64  `json:"bytes"`
		MaxBytes int64  `json:"max_bytes"`
		Records  uint64 `json:"records"`
	} `json:"spool"`
	Forwarded        uint64 `json:"forwarded"`
	Takeovers        uint64 `json:"takeovers"`
	LeaseLosses      uint64 `json:"lease_losses"`
	CheckpointErrors uint64 `json:"checkpoint_errors"`
	Refused          uint64 `json:"refused"`
}

// hostStatus is GET /v1/status of a fleet host: its windows and its fleet.
type hostStatus struct {
	status
	Fleet *fleetStatus `json:"fleet"`
}

func (h hostStatus) owns(p int) bool {
	for _, o := range h.Fleet.Owned {
		if o.Partition == p {
			return true
		}
	}
	return false
}

func (h hostStatus) owned() []int {
	var ps []int
	for _, o := range h.Fleet.Owned {
		ps = append(ps, o.Partition)
	}
	return ps
}

// hostStatusOf reads the status of a, with every window it lists.
func hostStatusOf(t *testing.T, a *agent) hostStatus {
	t.Helper()
	code, body := a.get(t, "/v1/status?model=*&limit=1000")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/status: %d %s", code, body)
	}
	var st hostStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /v1/status: %v: %s", err, body)
	}
	if st.Fleet == nil {
		t.Fatalf("GET /v1/status has no \"fleet\": %s", shorten(string(body), 2000, 0))
	}
	return st
}

// statuses reads the status of each of the instances.
func (f *fleet) statuses(t *testing.T, instances ...string) map[string]hostStatus {
	t.Helper()
	out := map[string]hostStatus{}
	for _, in := range instances {
		out[in] = hostStatusOf(t, f.agents[in])
	}
	return out
}

// cover reports whether the instances own every partition between them,
// each partition once, and each instance some.
func cover(sts map[string]hostStatus) (bool, string) {
	owner := map[int][]string{}
	for in, st := range sts {
		if len(st.Fleet.Owned) == 0 {
			return false, in + " owns nothing"
		}
		for _, p := range st.owned() {
			owner[p] = append(owner[p], in)
		}
	}
	for p := range fleetPartitions {
		if len(owner[p]) != 1 {
			return false, fmt.Sprintf("partition %d is owned by %v", p, owner[p])
		}
	}
	return true, ""
}

// waitCover waits until the instances own every partition between them,
// each once, and returns how long it took.
func (f *fleet) waitCover(t *testing.T, timeout time.Duration, instances ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	deadline := start.Add(timeout)
	for {
		ok, w := cover(f.statuses(t, instances...))
		if ok {
			return time.Since(start)
		}
		why = w
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %v do not own the %d partitions between them, each once: %s", timeout, instances, fleetPartitions, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownerOf returns the instance among instances that owns partition p.
func (f *fleet) ownerOf(t *testing.T, p int, instances ...string) string {
	t.Helper()
	for in, st := range f.statuses(t, instances...) {
		if st.owns(p) {
			return in
		}
	}
	t.Fatalf("no instance of %v owns partition %d", instances, p)
	return ""
}

// instanceOf is the instance an event names.
func instanceOf(e event) string {
	var x struct {
		Instance string `json:"instance"`
	}
	_ = json.Unmarshal([]byte(e.raw), &x)
	return x.Instance
}

// counts returns, per version, the counts of accuracy values the hosts'
// windows hold, and which hosts list it.
func counts(sts map[string]hostStatus) (map[string]uint64, map[string][]string) {
	n, where := map[string]uint64{}, map[string][]string{}
	for in, st := range sts {
		for _, s := range st.Streams {
			if s.Model != fleetModel {
				continue
			}
			n[s.Version] += s.Metrics["accuracy"].Count
			where[s.Version] = append(where[s.Version], in)
		}
	}
	return n, where
}

// settled is the outcome of settle: the drift events seen on h3 since the
// fleet started, and the status of the live hosts once nothing moved any
// more.
type settled struct {
	drifts []event
	sts    map[string]hostStatus
	took   time.Duration
}

// settle waits until the live instances' windows hold every value pushed,
// h3's subscriber saw as many drifts as backtest raises and the receiver
// got as many jobs, then until no host's events move for a second; it
// returns the drifts and the statuses.
func (f *fleet) settle(t *testing.T, live ...string) settled {
	t.Helper()
	start := time.Now()
	take := func() {
		if f.own == nil {
			for _, e := range f.sub.pending() {
				if e.Type == "drift" {
					f.drifts = append(f.drifts, e)
				}
			}
		}
		for in, sub := range f.own {
			for _, e := range sub.pending() {
				if e.Type == "drift" && instanceOf(e) == in {
					f.drifts = append(f.drifts, e)
				}
			}
		}
	}
	deadline := start.Add(fleetSettle)
	var why string
	var valuesAt, driftsAt, jobsAt time.Duration // when each was complete
	for {
		take()
		sts := f.statuses(t, live...)
		n, _ := counts(sts)
		why = ""
		for _, v := range f.data.versions {
			if n[v] < uint64(f.pushed[v]) {
				why = fmt.Sprintf("version %s: %d values in windows of %v, %d pushed", v, n[v], live, f.pushed[v])
				break
			}
		}
		if why == "" && valuesAt == 0 {
			valuesAt = time.Since(start)
		}
		if len(f.drifts) < len(f.want) {
			why = cmp.Or(why, fmt.Sprintf("%d drift events on h3, backtest raises %d", len(f.drifts), len(f.want)))
		} else if driftsAt == 0 {
			driftsAt = time.Since(start)
		}
		if jobs := len(distinctJobs(f.recv)); jobs < len(f.want) {
			why = cmp.Or(why, fmt.Sprintf("%d distinct jobs at the receiver, %d drifts", jobs, len(f.want)))
		} else if jobsAt == 0 {
			jobsAt = time.Since(start)
		}
		if why == "" {
			t.Logf("every value in a window %v, every drift seen %v, every job delivered %v after the last push",
				valuesAt.Round(time.Millisecond), driftsAt.Round(time.Millisecond), jobsAt.Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			f.dumpMissingDrifts(t)
			f.dump(t, live...)
			t.Fatalf("not settled after %v: %s", fleetSettle, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	// Then quiet: for a second, no host's events, forwarded lines or
	// partitions move, and every partition is owned once.
	state := func() string {
		sts := f.statuses(t, live...)
		if ok, why := cover(sts); !ok {
			return "no cover: " + why
		}
		var s []string
		for _, in := range live {
			st := sts[in]
			s = append(s, fmt.Sprintf("%s:%d/%d/%v", in, st.Events.LastSeq, st.Fleet.Forwarded, st.owned()))
		}
		return strings.Join(s, " ")
	}
	prev := state()
	quiet := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(time.Second)
		cur := state()
		if cur == prev && !strings.HasPrefix(cur, "no cover") {
			break
		}
		if time.Now().After(quiet) {
			f.dump(t, live...)
			t.Fatalf("the fleet does not stay still for a second within 30 s of settling: %s", cur)
		}
		prev = cur
	}
	take()
	return settled{drifts: slices.Clone(f.drifts), sts: f.statuses(t, live...), took: took}
}

// distinctJobs returns the deliveries the receiver accepted, by job id.
func distinctJobs(r *receiver) map[string][]delivery {
	out := map[string][]delivery{}
	for _, d := range r.accepted() {
		out[d.id] = append(out[d.id], d)
	}
	return out
}

// checkOptions tell checkFleet what this scenario allows.
type checkOptions struct {
	ownerRaises   bool // each drift is raised by its partition's owner at the end
	onceDelivered bool // no job id reaches the receiver twice
}

// checkFleet checks what every scenario must give: every value pushed is
// in exactly one window, on the host that owns its partition; the drifts
// are backtest's, each raised once; one job per drift, with distinct ids.
func (f *fleet) checkFleet(t *testing.T, s settled, o checkOptions) {
	t.Helper()
	n, where := counts(s.sts)
	for v, p := range f.pushed {
		switch {
		case len(where[v]) != 1:
			t.Errorf("version %s is in the windows of %v, want exactly one host", v, where[v])
		case n[v] != uint64(p):
			t.Errorf("version %s: %d values in %s's window, %d pushed", v, n[v], where[v][0], p)
		case !s.sts[where[v][0]].owns(wire.Partition(fleetModel, v, fleetPartitions)):
			t.Errorf("version %s (partition %d) is in the window of %s, which does not own the partition (owns %v)",
				v, wire.Partition(fleetModel, v, fleetPartitions), where[v][0], s.sts[where[v][0]].owned())
		}
	}

	seen := map[string][]event{}
	var incomplete []event
	for _, e := range s.drifts {
		seen[driftKey(e)] = append(seen[driftKey(e)], e)
		if e.Model == "" || e.Version == "" || e.Metric == "" || e.Detector == "" || e.Index == nil || instanceOf(e) == "" {
			incomplete = append(incomplete, e)
		}
	}
	if len(incomplete) > 0 {
		t.Errorf("%d of %d drift events without model, version, metric, detector, index or instance, such as %s",
			len(incomplete), len(s.drifts), incomplete[0])
	}
	var missing, extra, doubled []string
	for k := range f.want {
		if len(seen[k]) == 0 {
			missing = append(missing, k)
		}
	}
	for k, es := range seen {
		if !f.want[k] {
			extra = append(extra, fmt.Sprintf("%s (by %s)", k, instanceOf(es[0])))
		}
		if len(es) > 1 {
			doubled = append(doubled, fmt.Sprintf("%s %d times:\n%s", k, len(es), joinEvents(es)))
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("the fleet's drifts differ from backtest's: %d missing %v; %d not in backtest %v",
			len(missing), head(missing, 10), len(extra), head(extra, 10))
	}
	if len(doubled) > 0 {
		t.Errorf("%d drifts raised more than once: %s", len(doubled), strings.Join(head(doubled, 5), "\n"))
	}
	if o.ownerRaises {
		var wrong []string
		for _, e := range s.drifts {
			p := wire.Partition(e.Model, e.Version, fleetPartitions)
			if in := instanceOf(e); s.sts[in].Fleet == nil || !s.sts[in].owns(p) {
				wrong = append(wrong, fmt.Sprintf("%s (partition %d) raised by %q", driftKey(e), p, in))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%d drifts not raised by their partition's owner: %v", len(wrong), head(wrong, 5))
		}
	}

	jobs := distinctJobs(f.recv)
	jobKeys := map[string]string{}
	for id, ds := range jobs {
		j := ds[0].job
		k := fmt.Sprintf("%s|%s|%s|pagehinkley.acc|%d", j.Model, j.Version, j.Metric, j.Event.Index)
		if !f.want[k] {
			t.Errorf("job %s for %s, which is no drift of backtest's", id, k)
		}
		if prev, ok := jobKeys[k]; ok {
			t.Errorf("jobs %s and %s for the same drift %s", prev, id, k)
		}
		jobKeys[k] = id
		if o.onceDelivered && len(ds) > 1 {
			t.Errorf("job %s delivered %d times", id, len(ds))
		}
	}
	if len(jobs) != len(f.want) {
		t.Errorf("%d distinct job ids at the receiver, want %d (one per drift)", len(jobs), len(f.want))
	}
	t.Logf("settled in %v after the last push: %d drifts, %d jobs (%d deliveries)",
		s.took.Round(time.Millisecond), len(s.drifts), len(jobs), len(f.recv.accepted()))
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }

// fenceWatch follows the fleet's partitions bucket: a checkpoint written
// by an instance must follow that instance's own fencing write (or its
// own last checkpoint) of the key; another host's write in between means
// a stale owner put its checkpoint over the new owner's.
type fenceWatch struct {
	mu      sync.Mutex
	last    map[string]string // key -> owner of the last write seen
	writes  int
	stale   []string
	stopped bool
}

// kvPointer is a partition key's value as the owner writes it.
type kvPointer struct {
	Object   string `json:"object"`
	Seq      uint64 `json:"seq"`
	Owner    string `json:"owner"`
	Previous string `json:"previous_owner"`
}

func watchFences(t *testing.T, urls []string) *fenceWatch {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, fleetName+"_partitions")
	if err != nil {
		t.Fatalf("KV bucket %s_partitions: %v", fleetName, err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		wcancel()
		t.Fatal(err)
	}
	fw := &fenceWatch{last: map[string]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		initial := true
		for e := range w.Updates() {
			if e == nil {
				initial = false
				continue
			}
			var p kvPointer
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &p) != nil {
				continue
			}
			fw.mu.Lock()
			checkpoint := p.Previous == "" && p.Object != ""
			if prev, ok := fw.last[e.Key()]; !initial && checkpoint && ok && prev != p.Owner {
				fw.stale = append(fw.stale, fmt.Sprintf("%s rev %d: checkpoint %s (seq %d) by %s over %s's write",
					e.Key(), e.Revision(), p.Object, p.Seq, p.Owner, prev))
			}
			fw.last[e.Key()] = p.Owner
			fw.writes++
			fw.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		wcancel()
		_ = w.Stop()
		<-done
	})
	return fw
}

func (fw *fenceWatch) check(t *testing.T) {
	t.Helper()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(fw.stale) > 0 {
		t.Errorf("checkpoints written by a host that had lost the partition:\n\t%s", strings.Join(fw.stale, "\n\t"))
	}
	if fw.writes == 0 {
		t.Errorf("no write to the partitions bucket seen: no checkpoint was written")
	}
}

// waitSpoolEmpty waits until a's spool holds no record: JetStream has
// every line a accepted.
func waitSpoolEmpty(t *testing.T, a *agent, timeout time.Duration) {
	t.Helper()
	var last fleetStatus
	deadline := time.Now().Add(timeout)
	for {
		last = *hostStatusOf(t, a).Fleet
		if last.Spool.Records == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's spool still holds %d records (%d bytes) after %v", last.Instance, last.Spool.Records, last.Spool.Bytes, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three agents; every version's values pushed to h1: each drift is raised
// once fleet-wide, by its partition's owner, at backtest's index, and any
// host's subscribers (GET /v1/events on h3, `driftd events` on h2) see it;
// one job per drift; every value in its owner's window.
func TestFleetDriftOncePerModelVersion(t *testing.T) {
	f := startFleet(t, 3)
	took := f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	t.Logf("3 agents own the %d partitions between them %v after the last was ready", fleetPartitions, took.Round(time.Millisecond))
	fences := watchFences(t, f.nats.URLs())
	cli := f.agents["h2"].subscribeCLI(t, "-type", "drift")
	f.agents["h2"].waitSubscribers(t, 1)

	start := time.Now()
	for k := range fleetChunks {
		f.push(t, f.agents["h1"], k)
	}
	t.Logf("pushed %d lines to h1 in %v", fleetChunks*f.data.linesPerBody(), time.Since(start).Round(time.Millisecond))
	s := f.settle(t, "h1", "h2", "h3")
	f.checkFleet(t, s, checkOptions{ownerRaises: true, onceDelivered: true})
	fences.check(t)

	// `driftd events` on h2 saw the same drifts.
	var fromCLI []string
	for _, e := range cli.pending() {
		fromCLI = append(fromCLI, driftKey(e))
	}
	var fromHTTP []string
	for _, e := range s.drifts {
		fromHTTP = append(fromHTTP, driftKey(e))
	}
	slices.Sort(fromCLI)
	slices.Sort(fromHTTP)
	if !slices.Equal(fromCLI, fromHTTP) {
		t.Errorf("`driftd events -type drift` on h2 saw %d drifts, GET /v1/events on h3 %d", len(fromCLI), len(fromHTTP))
	}
	for in, st := range s.sts {
		if st.Fleet.Name != fleetName || st.Fleet.Instance != in || st.Fleet.Partitions != fleetPartitions || !st.Fleet.Connected || len(st.Fleet.Members) != 3 {
			b, _ := json.Marshal(st.Fleet)
			t.Errorf("%s: fleet status %s, want name %s, its instance, %d partitions, connected, 3 members", in, b, fleetName, fleetPartitions)
		}
		if st.Fleet.Refused != 0 || st.Fleet.CheckpointErrors != 0 {
			t.Errorf("%s: refused %d, checkpoint errors %d; want none", in, st.Fleet.Refused, st.Fleet.CheckpointErrors)
		}
		t.Logf("%s: takeovers %d, lease losses %d", in, st.Fleet.Takeovers, st.Fleet.LeaseLosses)
	}
	if fw := s.sts["h1"].Fleet.Forwarded; fw != uint64(fleetChunks*f.data.linesPerBody()) {
		t.Errorf("h1 forwarded %d lines, %d were pushed to it", fw, fleetChunks*f.data.linesPerBody())
	}
}

// An agent that owns partitions is killed with SIGKILL after half the
// values: the survivors take its partitions over from its checkpoints,
// and the drifts, the jobs and the windows are those of an uninterrupted
// run.
func TestFleetOwnerKilled(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	fences := watchFences(t, f.nats.URLs())

	f.push(t, f.agents["h1"], 0)
	f.push(t, f.agents["h1"], 1)
	// Kill h2 once h1 has forwarded the first half, so that the second
	// half, pushed to h3, follows it in every partition.
	waitSpoolEmpty(t, f.agents["h1"], 30*time.Second)
	h2 := hostStatusOf(t, f.agents["h2"])
	if len(h2.Fleet.Owned) == 0 {
		t.Fatal("h2 owns no partition")
	}
	var lag uint64
	for _, o := range h2.Fleet.Owned {
		lag += o.Pending
	}
	f.agents["h2"].stop(t, syscall.SIGKILL)
	took := f.waitCover(t, 30*time.Second, "h1", "h3")
	t.Logf("takeover: h2 (partitions %v, %d messages behind) killed; h1 and h3 own every partition %v later (lease_ttl %v)",
		h2.owned(), lag, took.Round(time.Millisecond), fleetLeaseTTL)
	if took > fleetLeaseTTL+3*time.Second {
		t.Logf("takeover took longer than lease_ttl + 3 s (%v)", took)
	}

	f.push(t, f.agents["h3"], 2)
	f.push(t, f.agents["h3"], 3)
	s := f.settle(t, "h1", "h3")
	f.checkFleet(t, s, checkOptions{})
	fences.check(t)
	var takeovers uint64
	for _, st := range s.sts {
		takeovers += st.Fleet.Takeovers
		for _, m := range st.Fleet.Members {
			if m.Instance == "h2" {
				t.Errorf("%s still lists the killed h2 as a member", st.Fleet.Instance)
			}
		}
	}
	if takeovers < uint64(len(h2.Fleet.Owned)) {
		t.Errorf("survivors count %d takeovers, h2 owned %d partitions", takeovers, len(h2.Fleet.Owned))
	}
}

// One of the three NATS servers is killed mid-stream: the streams have
// three replicas, and no value accepted is lost.
func TestFleetNATSServerKilled(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")

	f.push(t, f.agents["h1"], 0)
	// Kill the server h1 forwards to while the rest is pushed: once h1's
	// spool holds lines it has not forwarded yet.
	h1 := hostStatusOf(t, f.agents["h1"])
	var victim *natstest.Server
	for _, s := range f.nats.Servers {
		if s.URL() == h1.Fleet.Server {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("h1 is connected to %q, none of %v", h1.Fleet.Server, f.nats.URLs())
	}
	accepted := make(chan error, fleetChunks)
	go func() {
		for k := 1; k < fleetChunks; k++ {
			code, body, err := tryCurl(f.agents["h1"].socket, f.data.body(k), pushArgs...)
			var ans ingestAnswer
			if err == nil && (code != http.StatusOK || json.Unmarshal(body, &ans) != nil || ans.Accepted != f.data.linesPerBody()) {
				err = fmt.Errorf("push body %d: %d %s, want 200 and %d accepted", k, code, body, f.data.linesPerBody())
			}
			accepted <- err
		}
	}()
	var spooled uint64
	pushed := 0
	for pushed < fleetChunks-1 && spooled == 0 {
		select {
		case err := <-accepted:
			if err != nil {
				t.Fatal(err)
			}
			pushed++
		case <-time.After(2 * time.Millisecond):
		}
		spooled = hostStatusOf(t, f.agents["h1"]).Fleet.Spool.Records
	}
	victim.Kill()
	t.Logf("killed NATS server %s (h1's) with %d records in h1's spool, %d of the last %d bodies answered", victim.Name, spooled, pushed, fleetChunks-1)
	for ; pushed < fleetChunks-1; pushed++ {
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
	}
	for k := 1; k < fleetChunks; k++ {
		for _, v := range f.data.versions {
			f.pushed[v] += fleetValues / fleetChunks
		}
	}
	s := f.settle(t, "h1", "h2", "h3")
	f.checkFleet(t, s, checkOptions{})
	if st := s.sts["h1"]; st.Fleet.Server == victim.URL() || !st.Fleet.Connected {
		t.Errorf("h1: connected %v to %s, want connected to a live server", st.Fleet.Connected, st.Fleet.Server)
	}
}

// Every NATS server is down for a while: the agents keep accepting into
// their spools, and once the servers are back they forward everything, in
// order. Then an agent with a small spool answers 503 with Retry-After
// once it is full.
func TestFleetNATSDown(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")

	f.push(t, f.agents["h1"], 0)
	waitSpoolEmpty(t, f.agents["h1"], 30*time.Second)
	down := time.Now()
	for _, s := range f.nats.Servers {
		s.Kill()
	}
	for k := 1; k < fleetChunks; k++ {
		f.push(t, f.agents["h1"], k)
	}
	st := hostStatusOf(t, f.agents["h1"])
	if st.Fleet.Spool.Bytes <= 0 || st.Fleet.Spool.Records == 0 {
		t.Errorf("with NATS down, h1's spool holds %d records in %d bytes, want the %d lines pushed since",
			st.Fleet.Spool.Records, st.Fleet.Spool.Bytes, (fleetChunks-1)*f.data.linesPerBody())
	}
	if st.Fleet.Connected {
		t.Errorf("h1 says it is connected with every NATS server down")
	}
	t.Logf("NATS down: h1's spool holds %d records, %d bytes (max %d)", st.Fleet.Spool.Records, st.Fleet.Spool.Bytes, st.Fleet.Spool.MaxBytes)
	time.Sleep(time.Until(down.Add(10 * time.Second)))
	back := time.Now()
	for _, s := range f.nats.Servers {
		s.Start(t)
	}
	f.nats.WaitReady(t, 60*time.Second)
	t.Logf("NATS down for %v, JetStream ready again %v after the restart", back.Sub(down).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	waitSpoolEmpty(t, f.agents["h1"], 60*time.Second)
	t.Logf("h1's spool empty %v after the restart", time.Since(back).Round(time.Millisecond))
	s := f.settle(t, "h1", "h2", "h3")
	f.checkFleet(t, s, checkOptions{})

	// A small spool fills while NATS is down: 503 with Retry-After.
	small := f.add(t, "h4", "1MiB")
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3", "h4")
	for _, s := range f.nats.Servers {
		s.Kill()
	}
	values := make([]float64, 5000)
	for i := range values {
		values[i] = 0.9
	}
	body := accuracyNDJSON(fleetModel, "spooled", values)
	full := false
	var accepted int
	for i := 0; i < 100 && !full; i++ {
		code, hdr, ans := postMetrics(t, small, body)
		switch code {
		case http.StatusOK:
			accepted += parseIngestAnswer(t, ans).Accepted
		case http.StatusServiceUnavailable:
			full = true
			if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("503 with Retry-After %q, want seconds", hdr.Get("Retry-After"))
			}
			st := hostStatusOf(t, small).Fleet
			t.Logf("h4's spool full after %d lines accepted: %d bytes of %d; answer %s", accepted, st.Spool.Bytes, st.Spool.MaxBytes, ans)
			if st.Spool.MaxBytes != 1<<20 {
				t.Errorf("spool max_bytes %d, want 1 MiB", st.Spool.MaxBytes)
			}
		default:
			t.Fatalf("push to a spool filling up: %d %s", code, ans)
		}
	}
	if !full {
		t.Errorf("h4 with a 1 MiB spool accepted %d lines with NATS down and never answered 503", accepted)
	}
	for _, s := range f.nats.Servers {
		s.Start(t)
	}
	f.nats.WaitReady(t, 60*time.Second)
}

// postMetrics POSTs body to /v1/metrics and returns the status, the
// header and the body of the answer.
func postMetrics(t *testing.T, a *agent, body []byte) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://driftd/v1/metrics", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := a.client().Do(req)
	if err != nil {
		t.Fatalf("POST /v1/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// A fourth agent joins after half the values: partitions move to it, and
// no value is lost or drift doubled.
func TestFleetJoin(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	fences := watchFences(t, f.nats.URLs())

	f.push(t, f.agents["h1"], 0)
	f.push(t, f.agents["h1"], 1)
	joined := time.Now()
	f.add(t, "h4", "64MiB")
	f.waitCover(t, 60*time.Second, "h1", "h2", "h3", "h4")
	t.Logf("h4 owns partitions %v, every partition owned once by 4 hosts %v after h4 started",
		hostStatusOf(t, f.agents["h4"]).owned(), time.Since(joined).Round(time.Millisecond))
	f.push(t, f.agents["h1"], 2)
	f.push(t, f.agents["h1"], 3)
	s := f.settle(t, "h1", "h2", "h3", "h4")
	f.checkFleet(t, s, checkOptions{})
	fences.check(t)
	if len(s.sts["h4"].Fleet.Owned) == 0 {
		t.Errorf("h4 owns no partition")
	}
}

// An owner paused with SIGSTOP past its lease loses its partitions to the
// others; resumed, it writes no checkpoint and files no job of them.
func TestFleetStaleOwner(t *testing.T) {
	f := startFleet(t, 3)
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	fences := watchFences(t, f.nats.URLs())

	// The first half settles (its jobs delivered) before h2 is paused.
	f.push(t, f.agents["h1"], 0)
	f.push(t, f.agents["h1"], 1)
	waitSpoolEmpty(t, f.agents["h1"], 30*time.Second)
	firstHalf := 0
	for k := range f.want {
		i, _ := strconv.Atoi(k[strings.LastIndexByte(k, '|')+1:])
		if i < fleetValues/2 {
			firstHalf++
		}
	}
	deadline := time.Now().Add(fleetSettle)
	for len(distinctJobs(f.recv)) < firstHalf {
		if time.Now().After(deadline) {
			f.dump(t, "h1", "h2", "h3")
			t.Fatalf("%d jobs at the receiver after %v, want the %d of the first half's drifts", len(distinctJobs(f.recv)), fleetSettle, firstHalf)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h2 := f.agents["h2"]
	before := hostStatusOf(t, h2)
	if len(before.Fleet.Owned) == 0 {
		t.Fatal("h2 owns no partition")
	}
	paused := time.Now()
	if err := h2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = h2.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	took := f.waitCover(t, 30*time.Second, "h1", "h3")
	t.Logf("h2 (partitions %v) paused; h1 and h3 own every partition %v later", before.owned(), took.Round(time.Millisecond))
	time.Sleep(time.Until(paused.Add(5 * time.Second))) // well past lease_ttl

	f.push(t, f.agents["h1"], 2)
	f.push(t, f.agents["h1"], 3)
	f.settle(t, "h1", "h3")
	jobsBefore := len(f.recv.accepted())

	if err := h2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	eventually(t, 30*time.Second, "h2 counting a lease loss", func() bool {
		return hostStatusOf(t, h2).Fleet.LeaseLosses > 0
	})
	f.waitCover(t, 30*time.Second, "h1", "h2", "h3")
	// Whatever h2 does now, the settled fleet must not change.
	s := f.settle(t, "h1", "h2", "h3")
	f.checkFleet(t, s, checkOptions{onceDelivered: true})
	fences.check(t)
	if n := len(f.recv.accepted()); n != jobsBefore {
		t.Errorf("%d more deliveries after h2 resumed", n-jobsBefore)
	}
	st := hostStatusOf(t, h2).Fleet
	t.Logf("h2 resumed: lease losses %d, checkpoint errors %d, owns %d partitions now", st.LeaseLosses, st.CheckpointErrors, len(st.Owned))
}

// dumpLines logs what the lines stream holds per partition and its
// consumers, for a test that failed to settle.
func dumpLines(t *testing.T, urls []string) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Logf("dump the lines stream: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.LinesStream(fleetName))
	if err != nil {
		t.Logf("dump the lines stream: %v", err)
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(fleetName+".lines.>"))
	if err != nil {
		t.Logf("dump the lines stream: %v", err)
		return
	}
	t.Logf("stream %s: %d messages, seq %d..%d, per subject %v", info.Config.Name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.Subjects)
	// A consumer with messages to deliver and no pull request waiting
	// delivers nothing until its client pulls again.
	cl := s.ListConsumers(ctx)
	var n, idle int
	for ci := range cl.Info() {
		n++
		if ci.NumPending == 0 || ci.NumWaiting > 0 {
			continue
		}
		idle++
		t.Logf("consumer %s on %s%s: delivered up to stream seq %d (last at %v), %d pending, no pull request waiting",
			ci.Name, ci.Config.FilterSubject, strings.Join(ci.Config.FilterSubjects, ","), ci.Delivered.Stream, ci.Delivered.Last, ci.NumPending)
	}
	t.Logf("%d consumers of %s, %d of them with messages pending and no pull request (old owners' consumers not yet expired among them)",
		n, info.Config.Name, idle)
	if err := cl.Err(); err != nil {
		t.Logf("list consumers: %v", err)
	}
}

// dump logs, for a test that fails to settle, each host's fleet status,
// what the lines stream holds and its consumers, then ends the hosts with
// SIGQUIT and logs the goroutines of their partition owners.
func (f *fleet) dump(t *testing.T, live ...string) {
	t.Helper()
	for _, in := range live {
		b, _ := json.Marshal(hostStatusOf(t, f.agents[in]).Fleet)
		t.Logf("%s fleet status: %s", in, b)
	}
	dumpLines(t, f.nats.URLs())
	dumpJobs(t, f.nats.URLs())
	for _, in := range live {
		a := f.agents[in]
		a.signal(t, syscall.SIGQUIT)
		a.wait(t)
		if dir := os.Getenv("DRIFTD_E2E_FLEET_LOGS"); dir != "" {
			name := filepath.Join(dir, fmt.Sprintf("%s-%s.log", t.Name(), in))
			if err := os.WriteFile(name, []byte(a.log.String()), 0o644); err == nil {
				t.Logf("%s's whole log: %s", in, name)
			}
		}
		var keep []string
		for _, g := range strings.Split(a.log.String(), "\n\n") {
			if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, "fleet.(*Owner).consume") {
				keep = append(keep, g)
			}
		}
		t.Logf("%s: %d goroutines of fleet.(*Owner).consume:\n%s", in, len(keep), shorten(strings.Join(keep, "\n\n"), 24<<10, 0))
	}
}

// dumpMissingDrifts logs the drifts backtest raises that h3's subscriber
// has not seen, each with what the fleet's events stream holds of it.
func (f *fleet) dumpMissingDrifts(t *testing.T) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range f.drifts {
		seen[driftKey(e)] = true
	}
	var missing []string
	for k := range f.want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return
	}
	slices.Sort(missing)
	nc, err := nats.Connect(strings.Join(f.nats.URLs(), ","))
	if err != nil {
		t.Logf("%d drifts not seen on h3: %v", len(missing), missing)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, fleetName+"_events")
	for _, k := range head(missing, 20) {
		parts := strings.Split(k, "|")
		where := "?"
		if err == nil {
			subject := fmt.Sprintf("%s.events.drift.%s.%s", fleetName, parts[0], parts[1])
			if m, gerr := s.GetLastMsgForSubject(ctx, subject); gerr != nil {
				where = "not in the events stream: " + gerr.Error()
			} else {
				where = fmt.Sprintf("in the events stream at seq %d: %s", m.Sequence, m.Data)
			}
		}
		t.Logf("drift %s (partition %d) not seen on h3; %s", k, wire.Partition(parts[0], parts[1], fleetPartitions), where)
	}
	t.Logf("%d drifts not seen on h3", len(missing))
}

// dumpJobs logs what the fleet's job queue holds and its consumers.
func dumpJobs(t *testing.T, urls []string) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Logf("dump the jobs stream: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, fleetName+"_jobs")
	if err != nil {
		t.Logf("dump the jobs stream: %v", err)
		return
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Logf("dump the jobs stream: %v", err)
		return
	}
	t.Logf("stream %s: %d messages, seq %d..%d", info.Config.Name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	cl := s.ListConsumers(ctx)
	for ci := range cl.Info() {
		t.Logf("jobs consumer %s: delivered up to %d, ack floor %d, %d pending, %d ack pending, %d redelivered, %d waiting",
			ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
	}
}
