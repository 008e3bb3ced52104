package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/driftd/driftd/core/event"
)

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := event.Filter{Model: q.Get("model"), Version: q.Get("version")}
	for _, v := range q["type"] {
		for _, name := range strings.Split(v, ",") {
			t, ok := event.ParseType(strings.TrimSpace(name))
			if !ok {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown event type %q: use drift, warning, retrain, plugin, config, metric or model", name))
				return
			}
			f.Types = append(f.Types, t)
		}
	}
	var since uint64
	replay := q.Has("since")
	if v := q.Get("since"); replay {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not a sequence number", v))
			return
		}
		since = n
	}
	sub, err := s.opts.Bus.Subscribe(f, replay, since, s.b.Config().Events.Buffer)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Driftd-Last-Seq", strconv.FormatUint(s.opts.Bus.LastSeq(), 10))
	if sub.Missed > 0 {
		w.Header().Set("X-Driftd-Missed", strconv.FormatUint(sub.Missed, 10))
	}
	if sub.Restarted {
		w.Header().Set("X-Driftd-Restarted", "true")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	// A subscriber cut off for being slow loses its connection: a write
	// blocked on a client that does not read fails at once, and so does the
	// end of the stream, which makes the server close the connection rather
	// than keep it for another request.
	handlerDone, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sub.Done():
			if errors.Is(sub.Err(), event.ErrSlowSubscriber) {
				_ = rc.SetWriteDeadline(time.Now())
			}
		case <-handlerDone:
		}
	}()
	defer func() { close(handlerDone); <-watched }()
	// Events are gathered into writes of up to writeBatch bytes while more
	// are pending, and sent as soon as none is: a busy stream costs a
	// write a batch, not one an event, and a quiet one waits for nothing.
	var out []byte
	var enc event.Encoder
	for {
		e, err := sub.Next(r.Context().Done())
		if err != nil {
			if errors.Is(err, event.ErrSlowSubscriber) {
				_ = rc.SetWriteDeadline(time.Now())
				s.opts.Log.Warn("event subscriber cut off; closing its connection", "remote", r.RemoteAddr)
			}
			return
		}
		n := len(out)
		if out, err = enc.Append(out, &e); err != nil {
			out = out[:n]
			s.opts.Log.Warn("event not sent: cannot encode it", "seq", e.Seq, "error", err)
		} else {
			out = append(out, '\n')
		}
		idle := sub.Pending() == 0
		if !idle && len(out) < writeBatch {
			continue
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		if idle {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// writeBatch is how many bytes of events a subscriber's stream gathers
// into one write while more events are pending: 128 KiB, some 350
// warnings, costs a busy stream a tenth less CPU than 32 KiB, most of it
// the kernel's, in writes and in waking the reader.
const writeBatch = 128 << 10
