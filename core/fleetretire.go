package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/driftd/driftd/core/api"
	"github.com/driftd/driftd/core/fleet"
	"github.com/driftd/driftd/core/fleet/wire"
	"github.com/driftd/driftd/core/window"
)

// In fleet mode a model version's windows live on the owner of its
// partition, so a retirement asked of any host goes to the owners through
// the lines stream (fleet.Retire), after the lines this host accepted
// before it: those are retired with the windows, as on a single host.

const (
	// retireForwardWait bounds the wait for the lines accepted before a
	// retirement to be forwarded.
	retireForwardWait = 5 * time.Second
	// retirePublishWait bounds the publishing of the retirement to every
	// partition it concerns.
	retirePublishWait = 10 * time.Second
	// retireAnswerWait bounds the wait for the owners' answers, once it is
	// published; those that have not answered by then are listed as
	// pending.
	retireAnswerWait = 10 * time.Second
)

func (a *Agent) fleetRetire(ctx context.Context, fh *fleetHost, model, version string) (api.RetireResult, error) {
	l := fh.link.Load()
	if l == nil {
		return api.RetireResult{}, fmt.Errorf("%w: this host has not joined the fleet yet (NATS does not answer)", api.ErrUnavailable)
	}
	if err := fh.forwarded(ctx, retireForwardWait); err != nil {
		return api.RetireResult{}, fmt.Errorf("%w: lines accepted before the retirement are not forwarded yet (%v); try again", api.ErrUnavailable, err)
	}
	answers, pending, err := fleet.Retire(ctx, l.js, fh.opts, model, version, retirePublishWait, retireAnswerWait)
	if err != nil {
		return api.RetireResult{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	res := api.RetireResult{Retired: []api.Retired{}, Pending: pending}
	for _, an := range answers {
		for _, r := range an.Retired {
			res.Retired = append(res.Retired, api.Retired{Model: r.Model, Version: r.Version, Metrics: r.Metrics})
		}
	}
	slices.SortFunc(res.Retired, func(x, y api.Retired) int {
		if c := strings.Compare(x.Model, y.Model); c != 0 {
			return c
		}
		return strings.Compare(x.Version, y.Version)
	})
	if len(pending) > 0 {
		a.log.Warn("retirement sent; some partitions' owners have not answered yet", "model", model, "version", version, "pending", pending)
	}
	return res, nil
}

// forwarded returns once every line this host accepted until now is in
// the lines stream, or an error after wait.
func (fh *fleetHost) forwarded(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := fh.spool.Stats().LastSeq
	if err := fh.fwd.Sync(ctx); err != nil {
		return err
	}
	for fh.spool.Stats().FirstUnacked <= last {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d lines still in the spool", last+1-fh.spool.Stats().FirstUnacked)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Retire retires the owner's model versions of set that match, as a
// retirement message in the partition's lines asks.
func (l fleetLocal) Retire(ctx context.Context, set window.Set, model, version string) []wire.Retired {
	var out []wire.Retired
	for _, r := range l.a.retireMatching(ctx, set, model, version) {
		out = append(out, wire.Retired{Model: r.Model, Version: r.Version, Metrics: r.Metrics})
	}
	return out
}
