package webhook_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/driftd/driftd/plugins/webhook"
	"github.com/driftd/driftd/sdk"
	"github.com/driftd/driftd/sdk/sdktest"
)

// TestBinary builds the plugin's binary and drives it as the daemon does,
// over go-plugin in its own process, against a real receiver.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "driftd-plugin-webhook")
	build := exec.Command("go", "build", "-o", bin, "./cmd/driftd-plugin-webhook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	rc := newReceiver(t, status(http.StatusAccepted, nil, ""))
	r := sdktest.Binary(t, bin)
	if info := r.Info(); info.Name != "webhook" || info.Kind != sdk.KindSink || info.Version != webhook.Version {
		t.Fatalf("info %+v", info)
	}
	if err := r.Configure(ctx(t), sdk.Config{"url": rc.URL + "/retrain", "secret": "s",
		"headers": map[string]string{"Authorization": "Bearer t"}}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	job := testJob()
	if err := r.Deliver(ctx(t), job); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	got := rc.only(t)
	if got.Path != "/retrain" || got.Header.Get("X-Driftd-Id") != job.ID || got.Header.Get("Authorization") != "Bearer t" ||
		!webhook.Verify([]byte("s"), got.Body, got.Header.Get("X-Driftd-Signature")) {
		t.Fatalf("receiver got %s %v %s", got.Path, got.Header, got.Body)
	}

	// A refusal comes back through the process as a permanent failure.
	rc401 := newReceiver(t, status(http.StatusUnauthorized, nil, "bad signature"))
	r2 := sdktest.Binary(t, bin)
	if err := r2.Configure(ctx(t), sdk.Config{"url": rc401.URL}); err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, r2.Deliver(ctx(t), job))
	if want := "POST " + rc401.URL + `: 401 Unauthorized: "bad signature"`; !de.Permanent || de.Message != want {
		t.Fatalf("got %+v, want permanent %q", de, want)
	}
}
