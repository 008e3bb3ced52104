package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/driftd/driftd/plugins/adwin"
	"github.com/driftd/driftd/plugins/cusum"
	"github.com/driftd/driftd/plugins/ddm"
	"github.com/driftd/driftd/plugins/eddm"
	"github.com/driftd/driftd/plugins/fhddm"
	hddma "github.com/driftd/driftd/plugins/hddm_a"
	hddmw "github.com/driftd/driftd/plugins/hddm_w"
	"github.com/driftd/driftd/plugins/kswin"
	"github.com/driftd/driftd/plugins/pagehinkley"
	"github.com/driftd/driftd/plugins/threshold"
	"github.com/driftd/driftd/sdk"
)

// candidate is a detector as evaluated: its plugin and the config it gets
// on each scenario (River's defaults unless a scenario needs a bound).
type candidate struct {
	name     string
	binary   bool // takes only 0/1 errors
	anyInput bool // real-valued, but also evaluated on 0/1 errors
	correct  bool // takes 1 = correct rather than 1 = error
	plugin   func() sdk.Plugin
	config   func(s scenario) sdk.Config
}

var candidates = []candidate{
	{
		name: "threshold", plugin: func() sdk.Plugin { return &threshold.Threshold{} },
		config: func(s scenario) sdk.Config {
			if strings.HasPrefix(s.Name, "latency") {
				return sdk.Config{"ceiling": 30.0}
			}
			return sdk.Config{"floor": 0.90}
		},
	},
	{name: "pagehinkley", anyInput: true, plugin: func() sdk.Plugin { return &pagehinkley.PageHinkley{} }, config: defaults},
	{name: "adwin", anyInput: true, plugin: func() sdk.Plugin { return &adwin.ADWIN{} }, config: defaults},
	{name: "kswin", anyInput: true, plugin: func() sdk.Plugin { return &kswin.KSWIN{} }, config: defaults},
	{name: "cusum", anyInput: true, plugin: func() sdk.Plugin { return &cusum.CUSUM{} }, config: defaults},
	{name: "ddm", binary: true, plugin: func() sdk.Plugin { return &ddm.DDM{} }, config: defaults},
	{name: "eddm", binary: true, plugin: func() sdk.Plugin { return &eddm.EDDM{} }, config: defaults},
	{name: "hddm_a", binary: true, plugin: func() sdk.Plugin { return &hddma.HDDMA{} }, config: defaults},
	{name: "hddm_w", binary: true, plugin: func() sdk.Plugin { return &hddmw.HDDMW{} }, config: defaults},
	{name: "fhddm", binary: true, correct: true, plugin: func() sdk.Plugin { return &fhddm.FHDDM{} }, config: defaults},
}

func defaults(scenario) sdk.Config { return sdk.Config{} }

func (c candidate) make(s scenario) (sdk.Detector, error) {
	p := c.plugin()
	cfg, err := p.Schema().Apply(c.config(s))
	if err == nil {
		err = p.Configure(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", c.name, err)
	}
	return p.(sdk.Detector), nil
}

func (c candidate) describe(s scenario) string {
	cfg := c.config(s)
	if len(cfg) == 0 {
		return "defaults"
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s = %v", k, cfg[k]))
	}
	return strings.Join(parts, ", ")
}
