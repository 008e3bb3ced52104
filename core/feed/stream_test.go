package feed

import (
	"fmt"
	"strings"
	"sync"

	"github.com/driftd/driftd/core/window"
)

// testRetain is the retain budget of the tests' windows.
const testRetain = 1_000_000

// testWindows holds, per runner, the windows of the streams tests feed it
// directly, by stream key (runner.add).
var testWindows = struct {
	sync.Mutex
	m map[*Feed]*window.Store
}{m: map[*Feed]*window.Store{}}

// testSeries returns the series of a stream key, model/version/metric, in
// r's testWindows, creating it.
func testSeries(r *Feed, key string) *window.Series {
	model, rest, _ := strings.Cut(key, "/")
	version, metric, _ := strings.Cut(rest, "/")
	testWindows.Lock()
	defer testWindows.Unlock()
	st := testWindows.m[r]
	if st == nil {
		st = window.NewStore(testRetain)
		testWindows.m[r] = st
	}
	w := st.Get(model, version, 1000)
	w.Lock()
	defer w.Unlock()
	s := w.SeriesLocked(metric)
	s.KeepForReplaysLocked(true)
	return s
}

// add appends v to the stream named by key, as ingestion does, and queues
// it on r. The index must be the stream's next: tests feed each stream in
// order.
func (r *Feed) add(key string, index uint64, v, mean float64) {
	s := testSeries(r, key)
	w := s.Window()
	w.Lock()
	defer w.Unlock()
	if i := s.Add(v); i != index {
		panic(fmt.Sprintf("stream %s: value %d added at index %d", key, index, i))
	}
	r.Push(s, index, v, mean)
}

// replaying is a window.Routing that names, per metric, the feeds that
// replay.
type replaying map[string][]window.Reader

func (r replaying) Replaying(metric string) []window.Reader { return r[metric] }
