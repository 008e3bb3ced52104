package client_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/driftd/driftd/client"
)

func Example() {
	c, err := client.New(client.Options{Socket: "/run/driftd/driftd.sock", Logger: slog.Default()})
	if err != nil {
		panic(err) // only options out of range
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx) // sends what is queued, for at most 5 s
	}()

	// After each prediction: returns at once, never fails.
	c.Push(client.Metric{Model: "quality_inspector", Version: "v1.2.3",
		Accuracy: client.V(0.95), LatencyMS: client.V(12), Metrics: map[string]float64{"f1": 0.92}})
}
