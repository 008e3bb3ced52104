package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Three servers form one JetStream cluster: an R3 stream is placed on all
// three, survives the loss of one, and the killed server comes back.
func TestClusterOfThree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	c := StartCluster(t, 3)
	nc, err := nats.Connect(c.URLs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	var info *nats.StreamInfo
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err = js.AddStream(&nats.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := 1 + len(info.Cluster.Replicas); got != 3 {
		t.Fatalf("stream on %d servers, want 3", got)
	}
	if _, err := js.Publish("t.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c.Servers[2].Kill()
	if c.Servers[2].Running() {
		t.Fatal("killed server still running")
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, err = js.Publish("t.a", []byte("2"), nats.AckWait(2*time.Second))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("publish with one server of three down: %v", err)
	}
	c.Servers[2].Start(t)
	c.WaitReady(t, 30*time.Second)
	si, err := js.StreamInfo("T")
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 2 {
		t.Fatalf("%d messages, want 2", si.State.Msgs)
	}
}
