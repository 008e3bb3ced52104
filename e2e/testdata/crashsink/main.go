// Command crashsink is a sink plugin that crashes on purpose: the first
// delivery it gets makes the process exit, unless the file named by its
// marker setting exists, which it creates; so a restarted process goes on.
// It delivers a job by posting its JSON to url.
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
	url, marker string
}

func (c *crashSink) Info() sdk.Info {
	return sdk.Info{Name: "crashsink", Kind: sdk.KindSink, Version: "0.0.1"}
}

func (c *crashSink) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString, Required: true},
		{Name: "marker", Type: sdk.TypeString, Required: true},
	}}
}

func (c *crashSink) Configure(cfg sdk.Config) error {
	c.url, c.marker = cfg.String("url"), cfg.String("marker")
	return nil
}

func (c *crashSink) Deliver(ctx context.Context, job sdk.Job) error {
	if f, err := os.OpenFile(c.marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
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
