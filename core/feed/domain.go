package feed

import (
	"fmt"

	"github.com/driftd/driftd/sdk"
)

// DomainError refuses a value that a detector watching its metric does not
// take, such as 0.5 for a detector of error rates.
type DomainError struct {
	Metric   string
	Value    float64
	Detector string
	Domain   sdk.Domain
}

func (e *DomainError) Error() string {
	what := "a finite number"
	if e.Domain == sdk.DomainBinary {
		what = "0 or 1"
	}
	return fmt.Sprintf("%s: %v is not %s, which detector %s takes", e.Metric, e.Value, what, e.Detector)
}
