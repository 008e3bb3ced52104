package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
)

// Retire asks the owners of the partitions where model and version may be
// (path.Match globs; version "" for every version) to retire them: one
// retirement message in each partition's lines (see wire.Retire), which
// its owner applies in order with the lines. It publishes them all within
// publish, then returns the owners' answers that came within wait, by
// partition, and the partitions that did not answer by then: their owners
// retire the model versions when they get to the message, or a new owner
// does. When some messages cannot be published, the error says which; the
// others are applied.
func Retire(ctx context.Context, js jetstream.JetStream, o Options, model, version string, publish, wait time.Duration) (answers []wire.RetireAnswer, pending []int, err error) {
	parts := make([]int, o.Partitions)
	for p := range parts {
		parts[p] = p
	}
	if version != "" && !isGlob(model) && !isGlob(version) {
		parts = []int{wire.Partition(model, version, o.Partitions)}
	}
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	r := wire.Retire{ID: hex.EncodeToString(idb[:]), Model: model, Version: version}
	body, _ := json.Marshal(r)

	nc := js.Conn()
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, len(parts))
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, nil, fmt.Errorf("retire: %w", err)
	}
	defer sub.Unsubscribe()
	pctx, cancel := context.WithTimeout(ctx, publish)
	defer cancel()
	if err := nc.FlushWithContext(pctx); err != nil {
		return nil, nil, fmt.Errorf("retire: %w", err)
	}
	futures := make([]jetstream.PubAckFuture, len(parts))
	var failed []string
	for i, p := range parts {
		msg := nats.NewMsg(wire.LinesSubject(o.Name, p))
		msg.Header.Set(wire.HeaderKind, wire.KindRetire)
		msg.Header.Set(wire.HeaderReply, inbox)
		msg.Data = body
		if futures[i], err = js.PublishMsgAsync(msg, jetstream.WithMsgID(wire.RetireMsgID(r.ID, p))); err != nil {
			failed = append(failed, fmt.Sprintf("%d (%v)", p, err))
		}
	}
	var sent []int
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			sent = append(sent, parts[i])
		case err := <-f.Err():
			failed = append(failed, fmt.Sprintf("%d (%v)", parts[i], err))
		case <-pctx.Done():
			failed = append(failed, fmt.Sprintf("%d (%v)", parts[i], pctx.Err()))
		}
	}
	if len(failed) > 0 {
		return nil, nil, fmt.Errorf("retire: %d of %d partitions' lines did not take the retirement, partitions %s; those that did (%d) apply it",
			len(failed), len(parts), strings.Join(failed, ", "), len(sent))
	}
	parts = sent
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()

	waiting := map[int]bool{}
	for _, p := range parts {
		waiting[p] = true
	}
	for len(waiting) > 0 {
		select {
		case m := <-ch:
			var a wire.RetireAnswer
			if json.Unmarshal(m.Data, &a) != nil || !waiting[a.Partition] {
				continue // a second answer: a takeover replayed the message
			}
			delete(waiting, a.Partition)
			answers = append(answers, a)
		case <-wctx.Done():
			for p := range waiting {
				pending = append(pending, p)
			}
			slices.Sort(pending)
			waiting = nil
		}
	}
	slices.SortFunc(answers, func(a, b wire.RetireAnswer) int { return a.Partition - b.Partition })
	return answers, pending, nil
}

// isGlob tells whether s has path.Match's special characters.
func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }
