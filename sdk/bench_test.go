package sdk_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// BenchmarkRemoteUpdate sends calls shaped like the daemon's under load,
// 3,000 values spread over 1,000 streams, to a detector over real
// go-plugin gRPC, both ends in this process: one op is one value.
func BenchmarkRemoteUpdate(b *testing.B) {
	ctx := context.Background()
	r := sdktest.Start(b, &above{})
	if err := r.Configure(ctx, sdk.Config{"limit": 2.0}); err != nil {
		b.Fatal(err)
	}
	const streams, per = 1000, 3
	batches := make([]sdk.Batch, streams)
	values := make([]float64, streams*per)
	for i := range batches {
		batches[i] = sdk.Batch{Stream: fmt.Sprintf("model-%d/v1/accuracy", i), Values: values[i*per : (i+1)*per]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += len(values) {
		for i := range batches {
			batches[i].Start = uint64(done / streams)
		}
		if _, err := r.Update(ctx, batches); err != nil {
			b.Fatal(err)
		}
	}
}
