// Command driftd-eval measures driftd's detectors on standard drift
// scenarios over seeded runs and prints a Markdown table of mean detection
// delay, false alarms and missed detections. With -update FILE it replaces
// the table between the markers in FILE (docs/detectors.md).
//
//	go run ./cmd/driftd-eval -runs 100 -update docs/detectors.md
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/driftd/driftd/sdk"
)

func main() {
	runs := flag.Int("runs", 100, "seeded runs of each scenario")
	update := flag.String("update", "", "replace the table between the markers in this `file`")
	flag.Parse()
	var out bytes.Buffer
	if err := evaluate(&out, *runs); err != nil {
		fmt.Fprintf(os.Stderr, "driftd-eval: %v\n", err)
		os.Exit(1)
	}
	if *update == "" {
		os.Stdout.Write(out.Bytes())
		return
	}
	if err := replaceTable(*update, out.String()); err != nil {
		fmt.Fprintf(os.Stderr, "driftd-eval: %v\n", err)
		os.Exit(1)
	}
}

// scenario is a family of streams with one change at At.
type scenario struct {
	Name   string
	About  string
	Binary bool // values are 0/1 errors
	Len    int
	At     int
	gen    func(rng *rand.Rand, i int) float64
}

var scenarios = []scenario{
	{
		Name: "abrupt accuracy drop", About: "accuracy N(0.92, 0.01), then N(0.80, 0.01) from value 2000 of 4000",
		Len: 4000, At: 2000,
		gen: func(rng *rand.Rand, i int) float64 {
			return clamp01(step(i, 2000, 0.92, 0.80) + 0.01*rng.NormFloat64())
		},
	},
	{
		Name: "gradual accuracy drop", About: "accuracy N(0.92, 0.01), falling linearly to 0.80 over values 2000-3000 of 4000",
		Len: 4000, At: 2000,
		gen: func(rng *rand.Rand, i int) float64 {
			m := 0.92
			if i >= 2000 {
				m = 0.92 - 0.12*math.Min(1, float64(i-2000)/1000)
			}
			return clamp01(m + 0.01*rng.NormFloat64())
		},
	},
	{
		Name: "error-rate rise", About: "1 = error, Bernoulli(0.1), then Bernoulli(0.3) from value 1000 of 2000",
		Binary: true, Len: 2000, At: 1000,
		gen: func(rng *rand.Rand, i int) float64 {
			if rng.Float64() < step(i, 1000, 0.1, 0.3) {
				return 1
			}
			return 0
		},
	},
	{
		Name: "latency rise", About: "latency_ms 20 + Exp(mean 5), then 35 + Exp(mean 5) from value 2000 of 4000",
		Len: 4000, At: 2000,
		gen: func(rng *rand.Rand, i int) float64 { return step(i, 2000, 20, 35) + 5*rng.ExpFloat64() },
	},
}

func step(i, at int, before, after float64) float64 {
	if i < at {
		return before
	}
	return after
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// result sums up a detector on a scenario.
type result struct {
	detected    int     // runs with a drift at or after the change
	delaySum    float64 // of detected runs: first drift index - change
	falseAlarms int     // drifts before the change, all runs
	runs        int
}

func run(c candidate, s scenario, runs int) (result, error) {
	var r result
	for seed := range runs {
		rng := rand.New(rand.NewPCG(uint64(seed), 0xd1f7))
		xs := make([]float64, s.Len)
		for i := range xs {
			xs[i] = s.gen(rng, i)
		}
		if c.correct {
			for i := range xs {
				xs[i] = 1 - xs[i] // this detector takes 1 = correct
			}
		}
		d, err := c.make(s)
		if err != nil {
			return r, err
		}
		sigs, err := d.Update(context.Background(), []sdk.Batch{{Stream: "s", Values: xs}})
		if err != nil {
			return r, fmt.Errorf("%s on %s: %w", c.name, s.Name, err)
		}
		first := -1
		for _, sg := range sigs {
			if sg.Type != sdk.SignalDrift {
				continue
			}
			if int(sg.Index) < s.At {
				r.falseAlarms++
			} else if first < 0 {
				first = int(sg.Index)
			}
		}
		if first >= 0 {
			r.detected++
			r.delaySum += float64(first - s.At)
		}
		r.runs++
	}
	return r, nil
}

func evaluate(w io.Writer, runs int) error {
	for _, s := range scenarios {
		fmt.Fprintf(w, "\n**%s** (%s; %d seeded runs)\n\n", s.Name, s.About, runs)
		fmt.Fprintln(w, "| detector | config | mean delay (values) | false alarms per run | missed |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: |")
		for _, c := range candidates {
			if c.binary != s.Binary && !(c.anyInput && s.Binary) {
				continue
			}
			r, err := run(c, s, runs)
			if err != nil {
				return err
			}
			delay := "-"
			if r.detected > 0 {
				delay = fmt.Sprintf("%.1f", r.delaySum/float64(r.detected))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.2f | %d of %d |\n", c.name, c.describe(s), delay,
				float64(r.falseAlarms)/float64(r.runs), r.runs-r.detected, r.runs)
		}
	}
	return nil
}

const (
	beginMarker = "<!-- driftd-eval: begin -->"
	endMarker   = "<!-- driftd-eval: end -->"
)

func replaceTable(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s markers", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + table + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
