package metric

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// readAlone reads line after another, with a Reader without templates.
func readAlone(line string) string {
	rd := NewReader(strings.NewReader(`{"model":"other","version":"v0","accuracy":1}`+"\n"+line+"\n"), Limits{})
	rd.p.noTemplate = true
	describeRecord(rd)
	return describeRecord(rd)
}

// describeRecord describes the next result of rd's Next, without its line
// number.
func describeRecord(rd *Reader) string {
	m, err := rd.Next()
	var re *RecordError
	switch {
	case err == nil:
		return show(m)
	case errors.As(err, &re):
		return "bad: " + re.Err.Error()
	}
	return "end: " + err.Error()
}

// templateBases are records of the shapes streams repeat.
var templateBases = []string{
	`{"model":"m","version":"v1","accuracy":0.5}`,
	`{"model":"m","version":"v1","timestamp":"2026-12-01T10:00:00Z","accuracy":0.5,"latency_ms":12}`,
	`{"version":"v1","model":"m","metrics":{"auc":0.5,"loss":1.25}}`,
	`{"model":"m","version":"v1","precision":0.25,"metrics":{"zz":-2,"aa":3},"recall":1}`,
	` {"model":"fraud-detector","version":"2026.12.1","recall":1,"metrics":{"error":0}}` + "\r",
}

// Each line read by the template of the line before is what it is alone:
// the same metric, or the same error.
func TestTemplateReadsLikeFlat(t *testing.T) {
	variants := []func(string) string{
		func(s string) string { return s },
		func(s string) string { return strings.Replace(s, "0.5", "0.75", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "1.5", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "-0.5", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "5e-1", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "05", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "0.5x", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "0.5 ", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "0.12345678901234567890123", 1) },
		func(s string) string { return strings.Replace(s, "0.5", "null", 1) },
		func(s string) string { return strings.Replace(s, "0.5", `"0.5"`, 1) },
		func(s string) string { return strings.Replace(s, "12", "-12", 1) },
		func(s string) string { return strings.Replace(s, "1.25", "1e999", 1) },
		func(s string) string { return strings.Replace(s, "Z", "+01:00", 1) },
		func(s string) string { return strings.Replace(s, "10:00", "25:00", 1) },
		func(s string) string { return strings.Replace(s, `00Z"`, `00\u005a"`, 1) },
		func(s string) string { return strings.Replace(s, "}", `,"x":1}`, 1) },
		func(s string) string { return strings.Replace(s, "}", "}}", 1) },
		func(s string) string { return strings.Replace(s, `"zz"`, `"aa"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"m2"`, 1) },
		func(s string) string { return strings.Replace(s, `"v1"`, `"v.2-b_3"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"m 2"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `""`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"`+strings.Repeat("m", 129)+`"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"`+strings.Repeat("m", 128)+`"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"\u006d"`, 1) },
		func(s string) string { return strings.Replace(s, `"m"`, `"mé"`, 1) },
		func(s string) string { return strings.Replace(s, `"v1"`, `"v1`, 1) },
		func(s string) string { return strings.Replace(s, `"v1"`, `v1`, 1) },
		func(s string) string { return s + " " },
		func(s string) string { return s + "x" },
		func(s string) string { return s[:len(s)-1] },
		func(s string) string { return "  " + s },
	}
	for _, base := range templateBases {
		for k, variant := range variants {
			line := variant(base)
			rd := NewReader(strings.NewReader(base+"\n"+base+"\n"+line+"\n"+base+"\n"), Limits{})
			for range 2 {
				if got, want := describeRecord(rd), readAlone(base); got != want {
					t.Fatalf("base %s: %s, want %s", base, got, want)
				}
			}
			if !rd.p.tmpl.ok {
				t.Fatalf("no template after two lines of %s", base)
			}
			if got, want := describeRecord(rd), readAlone(line); got != want {
				t.Errorf("variant %d of %s:\n%s\n got %s\nwant %s", k, base, line, got, want)
			}
			if got, want := describeRecord(rd), readAlone(base); got != want {
				t.Errorf("after variant %d of %s: %s, want %s", k, base, got, want)
			}
		}
	}
}

// The same, for lines that differ from the template's at a random byte or
// two.
func TestTemplateReadsLikeFlatRandomly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const alphabet = `0123456789.eE-+" ,:{}[]\amxZT`
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		base := templateBases[rng.IntN(len(templateBases))]
		line := []byte(base)
		for range 1 + rng.IntN(2) {
			i := rng.IntN(len(line))
			switch rng.IntN(3) {
			case 0:
				line[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				line = append(line[:i], line[i+1:]...)
			case 2:
				line = append(line[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, line[i:]...)...)
			}
		}
		rd := NewReader(strings.NewReader(base+"\n"+base+"\n"+string(line)+"\n"+base+"\n"), Limits{})
		describeRecord(rd)
		describeRecord(rd)
		if got, want := describeRecord(rd), readAlone(string(line)); got != want {
			t.Fatalf("after %s:\n%s\n got %s\nwant %s", base, line, got, want)
		}
		if got, want := describeRecord(rd), readAlone(base); got != want {
			t.Fatalf("after %s:\n got %s\nwant %s", line, got, want)
		}
	}
}

// Lines of one shape and many model versions, taking turns, are read by
// the template; lines of another shape between them do not replace it.
func TestTemplateOfManyModelVersions(t *testing.T) {
	var body strings.Builder
	var want []string
	for i := range 300 {
		line := fmt.Sprintf(`{"model":"m%d","version":"v%d","accuracy":0.%d}`, i%7, i%3, i)
		if i%10 == 5 {
			line = fmt.Sprintf(`{"model":"m%d","version":"v%d","timestamp":"2026-12-01T10:00:%02dZ","recall":1}`, i%7, i%3, i%60)
		}
		body.WriteString(line + "\n")
		want = append(want, readAlone(line))
	}
	rd := NewReader(strings.NewReader(body.String()), Limits{})
	matched := 0
	for i, w := range want {
		if got := describeRecord(rd); got != w {
			t.Fatalf("line %d: %s, want %s", i+1, got, w)
		}
		if !rd.p.missed {
			matched++
		}
	}
	if matched < 260 {
		t.Errorf("%d of 300 lines matched the template, want the 270 of its shape but the first", matched)
	}
}
