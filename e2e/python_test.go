package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/driftd/driftd/internal/pluginhost"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// The Python plugin kit (sdk/python) as the daemon meets it: plugins written
// with it run as driftd-plugin-<name> in plugin_dir, each a two-line shell
// wrapper that runs the script with a Python that has grpcio and protobuf.
// These tests do not skip when there is none: make test installs Debian's
// python3-grpcio and python3-protobuf.

// python finds an interpreter that imports grpc and google.protobuf:
// $DRIFTD_PYTHON, then python3 on PATH, then Debian's /usr/bin/python3 (a
// python3 on PATH, from pyenv say, may lack Debian's packages).
var python = sync.OnceValues(func() (string, error) {
	var tried []string
	for _, cand := range []string{os.Getenv("DRIFTD_PYTHON"), "python3", "/usr/bin/python3"} {
		if cand == "" {
			continue
		}
		path, err := exec.LookPath(cand)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", cand, err))
			continue
		}
		out, err := exec.Command(path, "-c", "import grpc, google.protobuf").CombinedOutput()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v: %s", path, err, strings.TrimSpace(string(out))))
			continue
		}
		return path, nil
	}
	return "", fmt.Errorf("the Python plugin tests need python3 with grpcio and protobuf "+
		"(Debian: apt-get install python3-grpcio python3-protobuf; make test does), or $DRIFTD_PYTHON; tried:\n%s",
		strings.Join(tried, "\n"))
})

// installPython writes pluginDir/driftd-plugin-<name>, a wrapper that runs
// script (relative to the module root) with the kit on PYTHONPATH.
func installPython(name, script string) (string, error) {
	py, err := python()
	if err != nil {
		return "", err
	}
	path := filepath.Join(pluginDir, "driftd-plugin-"+name)
	wrapper := fmt.Sprintf("#!/bin/sh\nPYTHONPATH=%s exec %s %s \"$@\"\n",
		shellQuote(filepath.Join(moduleRoot, "sdk", "python")), shellQuote(py), shellQuote(filepath.Join(moduleRoot, script)))
	return path, os.WriteFile(path, []byte(wrapper), 0o755)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var (
	installMeanShift = sync.OnceValues(func() (string, error) {
		return installPython("meanshift", "sdk/python/examples/meanshift.py")
	})
	installProbe = sync.OnceValues(func() (string, error) {
		return installPython("pyprobe", "e2e/testdata/pyprobe/probe.py")
	})
)

func needPlugin(t testing.TB, install func() (string, error)) string {
	t.Helper()
	path, err := install()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The kit's own unit tests, run with the interpreter the plugins get.
func TestPythonKitUnitTests(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	py, err := python()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", "sdk/python/tests", "-t", "sdk/python")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python -m unittest: %v\n%s", err, out)
	}
}

// Every path of the protocol, from the daemon's side of it: pluginhost.Start
// and the instance the daemon uses, against the probe plugin.
func TestPythonPluginProtocol(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	path := needPlugin(t, installProbe)
	ctx := context.Background()
	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	p, err := pluginhost.Start(ctx, pluginhost.ProcessConfig{Path: path, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", logs)
		}
	}()
	pid := p.Pid()
	r := p
	d := p.Detector()

	if info := r.Info(); info != (sdk.Info{Name: "pyprobe", Kind: sdk.KindDetector, Version: "0.0.1", Description: "test probe"}) {
		t.Errorf("info %+v", info)
	}
	wantSchema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "limit", Type: sdk.TypeNumber, Required: true, Description: "drift above this"},
		{Name: "label", Type: sdk.TypeString, Default: "x"},
		{Name: "strict", Type: sdk.TypeBool, Default: false},
	}}
	if s := r.Schema(); !reflect.DeepEqual(s, wantSchema) {
		t.Errorf("schema %+v", s)
	}

	// Refused configs travel as ConfigErrors; the plugin stays unconfigured.
	for _, c := range []struct {
		cfg  sdk.Config
		want []sdk.ConfigError
	}{
		{sdk.Config{"label": 1.0, "colour": "red"}, []sdk.ConfigError{
			{Attribute: "colour", Message: "unsupported attribute"},
			{Attribute: "label", Message: "must be a string, not a number"},
			{Attribute: "limit", Message: "required attribute is missing"},
		}},
		{sdk.Config{"limit": -1.0}, []sdk.ConfigError{{Attribute: "limit", Message: "must be >= 0"}}},
		// The schema's problems and the plugin's, in one answer.
		{sdk.Config{"limit": -1.0, "strict": "yes"}, []sdk.ConfigError{
			{Attribute: "strict", Message: "must be a bool, not a string"},
			{Attribute: "limit", Message: "must be >= 0"},
		}},
		{sdk.Config{"limit": 1.0, "label": "boom"}, []sdk.ConfigError{{Message: "ValueError: the label blew up"}}},
	} {
		err := r.Configure(ctx, c.cfg)
		var got []sdk.ConfigError
		for _, ce := range sdk.ConfigErrors(err) {
			got = append(got, *ce)
		}
		if !errors.Is(err, sdk.ErrInvalidConfig) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("configure %v: %v, want %v", c.cfg, got, c.want)
		}
	}
	if err := r.Configure(ctx, sdk.Config{"limit": 1.0}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	var pe *pluginhost.PluginError
	if err := r.Configure(ctx, sdk.Config{"limit": 1.0}); !errors.As(err, &pe) {
		t.Errorf("second configure: %v, want a plugin error", err)
	}

	sigs, err := d.Update(ctx, []sdk.Batch{
		{Stream: "a", Start: 10, Values: []float64{0.5, 2, 7}},
		{Stream: "b", Start: 0, Values: []float64{3}},
	})
	want := []sdk.Signal{
		{Stream: "a", Index: 11, Type: sdk.SignalDrift, Details: map[string]float64{"value": 2}},
		{Stream: "a", Index: 12, Type: sdk.SignalDrift, Details: map[string]float64{"value": 7}},
		{Stream: "b", Index: 0, Type: sdk.SignalDrift, Details: map[string]float64{"value": 3}},
	}
	if err != nil || !reflect.DeepEqual(sigs, want) {
		t.Errorf("update: %+v, %v\nwant %+v", sigs, err, want)
	}
	if _, err := d.Update(ctx, []sdk.Batch{{Stream: "a", Values: []float64{1, math.NaN()}}}); !errors.Is(err, sdk.ErrBadRequest) {
		t.Errorf("NaN: %v, want ErrBadRequest", err)
	}
	if _, err := d.Update(ctx, []sdk.Batch{{Stream: "a", Values: []float64{42}}}); !errors.Is(err, sdk.ErrBadRequest) || !strings.Contains(err.Error(), "42 is not a value") {
		t.Errorf("BadRequest: %v, want ErrBadRequest", err)
	}
	if _, err := d.Update(ctx, []sdk.Batch{{Stream: "a", Values: []float64{13}}}); !errors.As(err, &pe) || pe.Code != "Internal" || !strings.Contains(pe.Message, "unlucky 13") {
		t.Errorf("a crash in update: %v, want an Internal plugin error", err)
	}
	// The kit takes omit_details: asked to, it leaves out the details of
	// drifts, and only of drifts.
	for _, omit := range [][]string{nil, {"drift"}, {"warning"}} {
		a := pluginhost.Answer{OmitDetails: omit}
		err := d.(pluginhost.AnswerUpdater).UpdateInto(ctx, []sdk.Batch{{Stream: "c", Values: []float64{4}}}, &a)
		wantDetails := len(omit) == 0 || omit[0] != "drift"
		if err != nil || len(a.Signals) != 1 || a.Signals[0].Type != "drift" || (len(a.Signals[0].Details) == 1) != wantDetails {
			t.Errorf("update asking to omit the details of %v: %+v, %v; want a drift, with details %v", omit, a.Signals, err, wantDetails)
		}
		if err := d.(sdk.Resetter).Reset(ctx, "c"); err != nil {
			t.Errorf("reset: %v", err)
		}
	}
	if err := d.(sdk.Resetter).Reset(ctx, "a"); err != nil {
		t.Errorf("reset: %v", err)
	}
	// The plugin keeps serving after all that.
	if sigs, err := d.Update(ctx, []sdk.Batch{{Stream: "a", Values: []float64{5}}}); err != nil || len(sigs) != 1 {
		t.Errorf("update after errors: %v, %v", sigs, err)
	}

	eventually(t, eventTimeout, "the plugin's log line and stray stdout in the daemon's log", func() bool {
		l := logs.String()
		return strings.Contains(l, "pyprobe configured: limit=1") && strings.Contains(l, "update failed") &&
			strings.Contains(l, "plugin wrote to stdout") && strings.Contains(l, "stray stdout line for 7")
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "pyprobe configured") && !strings.Contains(line, "[INFO]") {
			t.Errorf("the plugin's info line is not logged at info: %s", line)
		}
	}

	proc, _ := procOf(pid)
	p.Kill()
	if !proc.gone() {
		t.Errorf("plugin pid %d still running after Kill", pid)
	}
	if l := logs.String(); strings.Contains(l, "plugin failed to exit gracefully") || !strings.Contains(l, "plugin exited") {
		t.Errorf("the plugin did not exit on the controller's Shutdown:\n%s", l)
	}
}

// The example detector gives the same signals however the values are
// batched: value by value, one call each, against random batches.
func TestPythonPluginBatching(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	path := needPlugin(t, installMeanShift)
	cfg := sdk.Config{"threshold": 0.03, "reference": 50.0, "recent": 5.0}
	rng := rand.New(rand.NewPCG(5, 6))
	streams := map[string][]float64{}
	for _, name := range []string{"a", "b"} {
		xs := make([]float64, 1500)
		level := 0.9
		for i := range xs {
			if i%300 == 299 {
				level -= 0.05
			}
			xs[i] = level + 0.01*rng.NormFloat64()
		}
		streams[name] = xs
	}
	one := sdktest.Binary(t, path)
	if err := one.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string][]sdk.Signal{}
	for name, xs := range streams {
		for i, x := range xs {
			sigs, err := one.Update(context.Background(), []sdk.Batch{{Stream: name, Start: uint64(i), Values: []float64{x}}})
			if err != nil {
				t.Fatal(err)
			}
			want[name] = append(want[name], sigs...)
		}
		if len(want[name]) == 0 {
			t.Fatalf("stream %s raised no drift: a useless case", name)
		}
	}
	batched := sdktest.Binary(t, path)
	if err := batched.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	got := sdktest.FeedRandomly(t, batched, streams, rng)
	for name := range streams {
		if !reflect.DeepEqual(got[name], want[name]) {
			t.Errorf("stream %s: batched drifts %v, value by value %v", name,
				sdktest.Indices(got[name], sdk.SignalDrift), sdktest.Indices(want[name], sdk.SignalDrift))
		}
	}
}

// A Python plugin in the agent: it raises drift, its log lines reach the
// agent's log under the detector's name, and when the agent stops, the
// Python process exits on the controller's Shutdown, not killed.
func TestPythonPluginInAgent(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	needPlugin(t, installMeanShift)
	a := startAgent(t, `
detector "meanshift" "acc_shift" {
  metric = "accuracy"
  config {
    threshold = 0.05
    reference = 50
    recent    = 5
  }
}
monitor "*" {
  detectors = ["meanshift.acc_shift"]
}
`)
	var pid int
	for _, p := range a.status(t).Plugins {
		if p.Detector == "meanshift.acc_shift" {
			pid = p.Pid
		}
	}
	proc, ok := procOf(pid)
	if pid == 0 || !ok {
		t.Fatalf("no running meanshift plugin in status (pid %d)", pid)
	}
	drift := a.subscribe(t, "type=drift")
	values := make([]float64, 0, 80)
	for i := range 60 {
		values = append(values, 0.9+0.005*float64(i%3-1))
	}
	for range 20 {
		values = append(values, 0.8)
	}
	code, body := curlPush(t, a.socket, accuracyNDJSON("m", "v1", values))
	if ans := parseIngestAnswer(t, body); code != http.StatusOK || ans.Accepted != len(values) {
		t.Fatalf("push: %d %s", code, body)
	}
	// The recent window (5 values) holds three 0.8 at index 62, for a mean
	// of 0.841, 0.059 below the reference's 0.9; at 61 it was 0.86. After
	// the drift the stream starts afresh and 17 values are too few to test.
	e := drift.collect(t, 1)[0]
	if e.Detector != "meanshift.acc_shift" || e.idx() != 62 || e.Model != "m" || e.Metric != "accuracy" {
		t.Fatalf("drift %s, want meanshift.acc_shift at index 62", e)
	}
	if d := e.Details["difference"]; math.Abs(d+0.059) > 1e-9 || e.Details["threshold"] != 0.05 {
		t.Errorf("details %v, want a difference of -0.059 against 0.05", e.Details)
	}
	eventually(t, eventTimeout, "the plugin's log line in the agent's log", func() bool {
		return strings.Contains(a.log.String(), "meanshift configured")
	})
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "meanshift configured") && !strings.Contains(line, "plugin.meanshift.acc_shift") {
			t.Errorf("plugin log line not under the detector's name: %s", line)
		}
	}
	a.waitFed(t, "meanshift.acc_shift", uint64(len(values)))
	if got := drift.pending(); len(got) > 0 {
		t.Errorf("more drifts than one:\n%s", joinEvents(got))
	}

	if st := a.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Fatalf("agent exit after SIGTERM: %v", st)
	}
	if !proc.gone() {
		t.Errorf("Python plugin pid %d still running after the agent stopped", pid)
	}
	log := a.log.String()
	if strings.Contains(log, "plugin failed to exit gracefully") {
		t.Error("the agent had to kill the Python plugin: it did not exit on Shutdown")
	}
	if !strings.Contains(log, "plugin.meanshift.acc_shift: plugin exited") {
		t.Error(`no "plugin exited" for the Python plugin in the agent's log`)
	}
}

// No Python plugin outlives an agent killed with SIGKILL: the Pdeathsig the
// daemon sets reaches Python itself through the wrapper's exec.
func TestPythonPluginDiesWithAgent(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	needPlugin(t, installMeanShift)
	a := startAgent(t, `
detector "meanshift" "acc_shift" {
  metric = "accuracy"
  config {
    threshold = 0.05
  }
}
`)
	var procs []proc
	for _, p := range a.status(t).Plugins {
		if pr, ok := procOf(p.Pid); ok {
			procs = append(procs, pr)
		}
	}
	if len(procs) != 1 {
		t.Fatalf("want one running plugin, status has %d", len(procs))
	}
	a.stop(t, syscall.SIGKILL)
	eventually(t, eventTimeout, "the Python plugin gone after the agent's SIGKILL", procs[0].gone)
}
