package window

import (
	"errors"
	"fmt"
)

// ErrTooManyStreams is wrapped by a *StreamLimitError.
var ErrTooManyStreams = errors.New("too many streams")

// StreamLimitError refuses a metric whose values would make the windows
// hold more streams than ingest.max_streams. Nothing of the metric was
// taken; the streams that exist go on as before.
type StreamLimitError struct {
	Stream string // the first new stream of the metric, model/version/metric
	New    int    // the new streams it would make
	Held   int    // the streams the windows hold
	Limit  int
}

func (e *StreamLimitError) Error() string {
	what := fmt.Sprintf("new stream %q", e.Stream)
	if e.New > 1 {
		what = fmt.Sprintf("%d new streams (the first %q)", e.New, e.Stream)
	}
	return fmt.Sprintf("too many streams: %s refused; %d held, the limit is %d (ingest.max_streams)", what, e.Held, e.Limit)
}

func (e *StreamLimitError) Unwrap() error { return ErrTooManyStreams }
