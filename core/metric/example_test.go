package metric_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/driftd/driftd/core/metric"
)

// A handler of POST /v1/metrics keeps the good records, lists the bad ones
// by line and stops at a fatal error (413 for the limits).
func ExampleReader() {
	body := strings.NewReader(`{"model":"quality_inspector","version":"v1.2.3","accuracy":0.95,"metrics":{"f1":0.92}}
{"model":"quality_inspector","version":"v1.2.3","acuracy":0.95}
{"model":"quality_inspector","version":"v1.2.3","accuracy":1.5,"latency_ms":-2}
`)
	r := metric.NewReader(body, metric.Limits{})
	accepted := 0
	for {
		m, err := r.Next()
		var re *metric.RecordError
		switch {
		case err == io.EOF:
			fmt.Println("accepted:", accepted)
			return
		case errors.As(err, &re):
			fmt.Printf("{\"line\":%d,\"error\":%q}\n", re.Line, re.Err.Error())
		case err != nil:
			fmt.Println("stop:", err) // ErrLineTooLong, ErrDocumentTooLarge or a read error
			return
		default:
			accepted++
			fmt.Println(m.Model, m.Version, m.Values)
		}
	}
	// Output:
	// quality_inspector v1.2.3 [{accuracy 0.95} {f1 0.92}]
	// {"line":2,"error":"unknown field \"acuracy\" (did you mean \"accuracy\"?)"}
	// {"line":3,"error":"accuracy: 1.5 is out of range [0, 1]"}
	// accepted: 1
}
