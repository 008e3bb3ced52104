// Command crashsink is a sink plugin that fails on purpose: the first
// delivery it gets makes the process exit (mode "exit") or hang (mode
// "hang"), unless the file named by its marker setting exists, which it
// creates; so a restarted process goes on. It delivers a job by posting its
// JSON to url.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/driftd/driftd/sdk"
)

type crashSink struct {
	url, marker, mode string
}

func (c *crashSink) Info() sdk.Info {
	return sdk.Info{Name: "crashsink", Kind: sdk.KindSink, Version: "0.0.1"}
}

func (c *crashSink) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true},
		{Name: "marker", Type: sdk.TypeString, Required: true},
		{Name: "mode", Type: sdk.TypeString, Default: "exit"},
	}}
}

func (c *crashSink) Configure(cfg sdk.Config) error {
	c.url, c.marker, c.mode = cfg.String("url"), cfg.String("marker"), cfg.String("mode")
	return sdk.OneOf("mode", c.mode, "exit", "hang")
}

func (c *crashSink) Deliver(ctx context.Context, job sdk.Job) error {
	if f, err := os.OpenFile(c.marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
		if c.mode == "hang" {
			select {}
		}
		os.Exit(3)
	}
	body, err := json.Marshal(job)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent(err)
	}
	req.Header.Set("X-Driftd-Id", job.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", c.url, resp.Status)
	}
	return nil
}

func main() { sdk.Serve(&crashSink{}) }
