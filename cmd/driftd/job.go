package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftd/driftd/core/jobs"
)

const jobUsage = `Usage: driftd job <subcommand> [flags]

Look at and act on the retrain jobs in the daemon's outbox.

Subcommands:
  list       list the retrain jobs: pending, failed and the last delivered
  retry ID   queue a failed job again, with its id and no attempts made

driftd job <subcommand> -h describes each.
`

// runJob is `driftd job <subcommand>`.
func runJob(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return subcommands("job", jobUsage, map[string]func([]string) int{
		"list":  func(args []string) int { return runJobList(ctx, args, stdout, stderr) },
		"retry": func(args []string) int { return runJobRetry(ctx, args, stdout, stderr) },
	}, args, stdout, stderr)
}

func runJobList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("job list", "", "List the retrain jobs in the outbox: the pending ones, the failed ones and the last 100 delivered.", stdout, stderr)
	sock := socketFlag(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fs.usageError("unexpected argument %q", fs.Arg(0))
	}
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "job list", socket, http.MethodGet, "http://driftd/v1/status", nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	var st struct {
		Jobs jobs.List `json:"jobs"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		fmt.Fprintf(stderr, "driftd job list: GET /v1/status: %s: %s\n", resp.Status, strings.TrimSpace(string(b)))
		return exitFailure
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "driftd job list: unreadable status: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSINK\tMODEL\tVERSION\tSTATE\tATTEMPTS\tCREATED\tNEXT OR LAST ERROR")
	for _, group := range [][]jobs.Status{st.Jobs.Pending, st.Jobs.Failed, st.Jobs.Delivered} {
		for _, j := range group {
			note := j.LastError
			if j.State == jobs.Pending && !j.NextAttempt.IsZero() {
				note = "next attempt " + j.NextAttempt.Local().Format(time.DateTime)
				if j.LastError != "" {
					note += "; last error: " + j.LastError
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Kind, j.Sink, j.Model, j.Version, j.State,
				j.Attempts, j.Created.Local().Format(time.DateTime), note)
		}
	}
	tw.Flush()
	return exitOK
}

func runJobRetry(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("job retry", "ID", "Queue the failed retrain job ID again, with the same id and no attempts made.", stdout, stderr)
	sock := socketFlag(fs)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return fs.usageError("want one job ID")
	}
	id := fs.Arg(0)
	socket := socketPath(*sock)
	resp, code, ok := request(ctx, stderr, "job retry", socket, http.MethodPost, "http://driftd/v1/jobs/"+url.PathEscape(id)+"/retry", nil, "")
	if !ok {
		return code
	}
	defer resp.Body.Close()
	var ans struct {
		jobs.Status
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		fmt.Fprintf(stderr, "driftd job retry: %s: unreadable answer: %v\n", resp.Status, err)
		return exitFailure
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "driftd job retry: %s\n", ans.Error)
		return exitFailure
	}
	fmt.Fprintf(stdout, "queued again: %s (sink %s, model %s %s)\n", ans.ID, ans.Sink, ans.Model, ans.Version)
	return exitOK
}
