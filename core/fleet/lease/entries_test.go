package lease

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/driftd/driftd/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading a bucket while its keys are rewritten still sees every key.
func TestEntriesWhileRewritten(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t)
	js := connect(t, srv.URL())
	ctx := context.Background()
	f := newFleet(t, srv.URL())
	kv, stream, err := bucket(ctx, js, f.bucket+"_members", f.opts("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if _, err := kv.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			for wctx.Err() == nil {
				kv.Put(wctx, k, []byte(k))
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	for i := range 200 {
		es, err := entries(ctx, kv, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(entryKeys(es)); got != fmt.Sprint(keys) {
			t.Fatalf("read %d: keys %s, want %v", i, got, keys)
		}
	}
}

func entryKeys(es []jetstream.KeyValueEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key())
	}
	return out
}
