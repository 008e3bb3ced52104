package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/driftd/driftd/core/config"
)

// socketFlag adds -socket to a client command.
func socketFlag(fs *flags) *string {
	return fs.String("socket", "", "daemon `socket` (default $DRIFTD_SOCKET, then ./driftd.sock)")
}

func socketPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("DRIFTD_SOCKET"); env != "" {
		return env
	}
	return "./driftd.sock"
}

// httpClient speaks HTTP over the daemon's Unix socket.
func httpClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

func connectError(stderr io.Writer, cmd, socket string, err error) int {
	fmt.Fprintf(stderr, "driftd %s: cannot reach the daemon at %s: %v\n", cmd, socket, err)
	return exitFailure
}

// request sends a request to the daemon at socket for the subcommand cmd
// ("job list"), with the Content-Type contentType unless it is "". When it
// cannot, it says why on stderr and returns ok false with the exit code.
func request(ctx context.Context, stderr io.Writer, cmd, socket, method, target string, body io.Reader, contentType string) (resp *http.Response, code int, ok bool) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		fmt.Fprintf(stderr, "driftd %s: %v\n", cmd, err)
		return nil, exitFailure, false
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err = httpClient(socket).Do(req)
	if err != nil {
		return nil, connectError(stderr, cmd, socket, err), false
	}
	return resp, exitOK, true
}

func runPush(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("push", "[FILE|-]", "Push metrics (NDJSON, a JSON array or an object) from FILE or standard input to the daemon.", stdout, stderr)
	sock := socketFlag(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return fs.usageError("want at most one FILE")
	}
	body := stdin
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "driftd push: %v\n", err)
			return exitFailure
		}
		defer f.Close()
		body = f
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "push", socket, http.MethodPost, "http://driftd/v1/metrics", body, "application/x-ndjson")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	var res struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Errors   []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"errors"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		fmt.Fprintf(stderr, "driftd push: %s: unreadable answer: %v\n", resp.Status, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "accepted %d, rejected %d\n", res.Accepted, res.Rejected)
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "line %d: %s\n", e.Line, e.Error)
	}
	if res.Error != "" {
		fmt.Fprintf(stderr, "driftd push: %s: %s\n", resp.Status, res.Error)
	}
	if resp.StatusCode != http.StatusOK || res.Rejected > 0 {
		return exitFailure
	}
	return exitOK
}

func runEvents(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("events", "", "Stream the daemon's events, a line each, until interrupted: from now on, or with -since SEQ first\n"+
		"those the daemon still holds after SEQ (-since 0: all it holds).", stdout, stderr)
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print each event as the API sends it, NDJSON")
	model := fs.String("model", "", "only events of this `model`")
	version := fs.String("version", "", "only events of this model `version`")
	since := fs.String("since", "", "first replay the held events after this `seq` (0: all held events)")
	var types stringList
	fs.Var(&types, "type", "only events of this `type` (drift, warning, retrain, plugin, config, metric, model); repeatable")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	q := url.Values{}
	if *model != "" {
		q.Set("model", *model)
	}
	if *version != "" {
		q.Set("version", *version)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	for _, t := range types {
		q.Add("type", t)
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "events", socket, http.MethodGet, "http://driftd/v1/events?"+q.Encode(), nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "driftd events: %s: %s\n", resp.Status, strings.TrimSpace(string(msg)))
		return exitFailure
	}
	if resp.Header.Get("X-Driftd-Restarted") == "true" {
		fmt.Fprintf(stderr, "driftd events: the daemon restarted since seq %s; replaying every event it holds\n", *since)
	}
	if n := resp.Header.Get("X-Driftd-Missed"); n != "" {
		fmt.Fprintf(stderr, "driftd events: %s events after %s are no longer held\n", n, *since)
	}
	if *since == "" {
		fmt.Fprintf(stderr, "driftd events: waiting for new events from %s (-since 0 first replays those the daemon holds)\n", socket)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := string(sc.Bytes())
		if !*asJSON {
			line = eventLine(sc.Bytes())
		}
		if _, err := fmt.Fprintln(stdout, line); err != nil {
			return exitFailure
		}
	}
	if ctx.Err() != nil {
		return exitOK // interrupted by the user
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "driftd events: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stderr, "driftd events: the daemon closed the stream")
	return exitFailure
}

func runForget(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("forget", "MODEL [VERSION]", "Retire a model version now: its windows are dropped and the detectors reset its streams; without\n"+
		"VERSION, every version of MODEL (a glob retires every version of the models it matches).", stdout, stderr)
	sock := socketFlag(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fs.usageError("want MODEL, and a VERSION or none")
	}
	target := "http://driftd/v1/models/" + url.PathEscape(fs.Arg(0))
	if fs.NArg() == 2 {
		target += "/versions/" + url.PathEscape(fs.Arg(1))
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "forget", socket, http.MethodDelete, target, nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	var res struct {
		Retired []struct {
			Model   string   `json:"model"`
			Version string   `json:"version"`
			Metrics []string `json:"metrics"`
		} `json:"retired"`
		Pending []int  `json:"pending"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		fmt.Fprintf(stderr, "driftd forget: %s: unreadable answer: %v\n", resp.Status, err)
		return exitFailure
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		fmt.Fprintf(stderr, "driftd forget: %s: %s\n", resp.Status, res.Error)
		return exitFailure
	}
	for _, r := range res.Retired {
		fmt.Fprintf(stdout, "retired %s version %s (%d streams: %s)\n", r.Model, r.Version, len(r.Metrics),
			strings.Join(r.Metrics, ", "))
	}
	if len(res.Pending) > 0 {
		ps := make([]string, len(res.Pending))
		for i, p := range res.Pending {
			ps[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(stdout, "partitions %s: no answer from their owners yet; each retires what matches when it gets to the request\n",
			strings.Join(ps, ", "))
	}
	return exitOK
}

// changes is what a reload did to the detectors or the sinks.
type changes struct {
	Started []string `json:"started"`
	Kept    []string `json:"kept"`
	Stopped []string `json:"stopped"`
}

func runReload(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("reload", "", "Reload the daemon's config file now and print the outcome: what started, stayed and stopped, or why the file was refused.", stdout, stderr)
	sock := socketFlag(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "reload", socket, http.MethodPost, "http://driftd/v1/reload", nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	var res struct {
		OK          bool                `json:"ok"`
		Changed     bool                `json:"changed"`
		Generation  uint64              `json:"generation"`
		Diagnostics []config.Diagnostic `json:"diagnostics"`
		Detectors   *changes            `json:"detectors"`
		Sinks       *changes            `json:"sinks"`
		Error       string              `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		fmt.Fprintf(stderr, "driftd reload: %s: unreadable answer: %v\n", resp.Status, err)
		return exitFailure
	}
	for _, d := range res.Diagnostics {
		fmt.Fprintln(stderr, d)
	}
	switch {
	case res.Error != "":
		fmt.Fprintf(stderr, "driftd reload: %s: %s\n", resp.Status, res.Error)
		return exitFailure
	case !res.OK:
		fmt.Fprintf(stderr, "driftd reload: config refused; generation %d keeps running\n", res.Generation)
		return exitFailure
	case !res.Changed:
		fmt.Fprintf(stdout, "unchanged: generation %d\n", res.Generation)
	default:
		fmt.Fprintf(stdout, "reloaded: generation %d", res.Generation)
		if d := res.Detectors; d != nil {
			fmt.Fprintf(stdout, " (detectors started %d, kept %d, stopped %d", len(d.Started), len(d.Kept), len(d.Stopped))
			if k := res.Sinks; k != nil && len(k.Started)+len(k.Kept)+len(k.Stopped) > 0 {
				fmt.Fprintf(stdout, "; sinks started %d, kept %d, stopped %d", len(k.Started), len(k.Kept), len(k.Stopped))
			}
			fmt.Fprint(stdout, ")")
		}
		fmt.Fprintln(stdout)
	}
	return exitOK
}
