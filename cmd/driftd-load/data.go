package main

import (
	"math/rand/v2"
	"strconv"
)

// valuesPerLine is how many values a generated line carries.
const valuesPerLine = 4

// minLines is the least number of lines generated; the pushers cycle
// through them.
const minLines = 1 << 16

// chunkBytes bounds a chunk of a streaming body.
const chunkBytes = 64 << 10

// load is the pre-generated NDJSON every pusher cycles through: rounds of
// one line per stream, with stationary values, so that no detector fires.
type load struct {
	data   []byte
	starts []int // starts[i] is where line i begins; starts[len] = len(data)
}

// lines returns the number of lines.
func (l *load) lines() int { return len(l.starts) - 1 }

// span returns lines [i, j) as one slice; j <= l.lines().
func (l *load) span(i, j int) []byte { return l.data[l.starts[i]:l.starts[j]] }

// generate makes the lines of streams model versions: 100 versions of each
// model name at most, values drawn from seed. Values are stationary noise
// around accuracy 0.9, precision 0.88, recall 0.86 (sd 0.02) and latency 12
// ms (sd 3).
func generate(streams int, seed uint64) *load {
	rounds := max(1, (minLines+streams-1)/streams)
	rng := rand.New(rand.NewPCG(seed, 0x64726966746421))
	names := make([][]byte, streams)
	for s := range names {
		var b []byte
		b = append(b, `{"model":"model-`...)
		b = strconv.AppendInt(b, int64(s/10), 10)
		b = append(b, `","version":"v`...)
		b = strconv.AppendInt(b, int64(s%10), 10)
		b = append(b, `"`...)
		names[s] = b
	}
	l := &load{starts: make([]int, 0, rounds*streams+1)}
	unit := func(mean float64) float64 { return min(1, max(0, mean+0.02*rng.NormFloat64())) }
	for range rounds {
		for s := range streams {
			l.starts = append(l.starts, len(l.data))
			l.data = append(l.data, names[s]...)
			l.data = append(l.data, `,"accuracy":`...)
			l.data = strconv.AppendFloat(l.data, unit(0.90), 'f', 4, 64)
			l.data = append(l.data, `,"precision":`...)
			l.data = strconv.AppendFloat(l.data, unit(0.88), 'f', 4, 64)
			l.data = append(l.data, `,"recall":`...)
			l.data = strconv.AppendFloat(l.data, unit(0.86), 'f', 4, 64)
			l.data = append(l.data, `,"latency_ms":`...)
			l.data = strconv.AppendFloat(l.data, max(0, 12+3*rng.NormFloat64()), 'f', 2, 64)
			l.data = append(l.data, "}\n"...)
		}
	}
	l.starts = append(l.starts, len(l.data))
	return l
}

// chunk is a run of whole lines.
type chunk struct {
	data  []byte
	lines int
}

// chunks cuts the load into runs of at most maxLines lines and maxBytes
// bytes (but at least one line each).
func (l *load) chunks(maxLines, maxBytes int) []chunk {
	var out []chunk
	for i := 0; i < l.lines(); {
		j := i + 1
		for j < l.lines() && j-i < maxLines && l.starts[j+1]-l.starts[i] <= maxBytes {
			j++
		}
		out = append(out, chunk{data: l.span(i, j), lines: j - i})
		i = j
	}
	return out
}
