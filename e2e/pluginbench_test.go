package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/pluginwire"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// What a plugin costs, Python (the kit, examples/meanshift.py) against Go
// (examples/plugins/zscore), over the real process boundary:
//
//	go test -run '^$' -bench 'Plugin(Start|Update)' -benchtime 1000x ./e2e
//
// BenchmarkPluginStart: from exec to the handshake line on stdout (ms/start).
// BenchmarkPluginUpdate: one Update call carrying a batch of 1 or 1024
// values of one stream, as the daemon makes it.

func benchPlugins(b *testing.B) map[string]struct {
	path string
	cfg  sdk.Config
} {
	return map[string]struct {
		path string
		cfg  sdk.Config
	}{
		"python": {needPlugin(b, installMeanShift), sdk.Config{"threshold": 0.1}},
		"go":     {needPlugin(b, buildZScore), sdk.Config{}},
	}
}

func BenchmarkPluginStart(b *testing.B) {
	requireE2EBench(b)
	for _, lang := range []string{"python", "go"} {
		path := benchPlugins(b)[lang].path
		b.Run(lang, func(b *testing.B) {
			dir, err := os.MkdirTemp("", "dd")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			var total time.Duration
			for b.Loop() {
				cmd := exec.Command(path)
				cmd.Env = cleanEnv(pluginwire.Handshake.MagicCookieKey+"="+pluginwire.Handshake.MagicCookieValue,
					"PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_UNIX_SOCKET_DIR="+dir)
				out, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				line, err := bufio.NewReader(out).ReadString('\n')
				total += time.Since(start)
				if err != nil || len(line) < 10 {
					b.Fatalf("handshake %q: %v", line, err)
				}
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
		})
	}
}

func BenchmarkPluginUpdate(b *testing.B) {
	requireE2EBench(b)
	for _, lang := range []string{"python", "go"} {
		p := benchPlugins(b)[lang]
		for _, n := range []int{1, 1024} {
			b.Run(lang+"/batch="+strconv.Itoa(n), func(b *testing.B) {
				r := sdktest.Binary(b, p.path)
				if err := r.Configure(context.Background(), p.cfg); err != nil {
					b.Fatal(err)
				}
				values := make([]float64, n)
				for i := range values {
					values[i] = 0.9 + 0.001*float64(i%5-2)
				}
				var index uint64
				for b.Loop() {
					if _, err := r.Update(context.Background(), []sdk.Batch{{Stream: "m/v1/accuracy", Start: index, Values: values}}); err != nil {
						b.Fatal(err)
					}
					index += uint64(n)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
			})
		}
	}
}

// requireE2EBench skips a benchmark in -short mode, when nothing was built.
func requireE2EBench(b *testing.B) {
	b.Helper()
	if testing.Short() {
		b.Skip("needs the binaries TestMain builds outside -short mode")
	}
}
