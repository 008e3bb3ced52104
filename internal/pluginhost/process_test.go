package pluginhost

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// go-plugin's own message for a plugin of another protocol version becomes a
// VersionError naming both versions.
func TestTranslateStartError(t *testing.T) {
	goPlugin := fmt.Errorf("incompatible API version with plugin. Plugin version: %d, Client versions: %d", 2, []int{1})
	err := translateStartError(goPlugin)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Plugin != 2 || !errors.Is(err, ErrProtocolVersion) {
		t.Fatalf("got %#v", err)
	}
	if want := "plugin speaks protocol version 2; this driftd speaks 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
	other := errors.New("plugin exited before we could connect")
	if got := translateStartError(other); got != other {
		t.Errorf("other errors must pass unchanged, got %v", got)
	}
}

func TestReattachFor(t *testing.T) {
	good := `{"zscore":{"protocol":"grpc","protocol_version":1,"network":"unix","addr":"/tmp/plugin1","pid":42}}`
	rc, err := reattachFor(good, "zscore")
	if err != nil || rc == nil {
		t.Fatalf("got %v, %v", rc, err)
	}
	if rc.Pid != 42 || rc.Addr.String() != "/tmp/plugin1" || rc.Addr.Network() != "unix" || !rc.Test {
		t.Errorf("got %+v", rc)
	}
	if rc, err := reattachFor(good, "threshold"); rc != nil || err != nil {
		t.Errorf("a plugin the variable does not name: got %v, %v, want nil, nil", rc, err)
	}
	if rc, err := reattachFor("", "zscore"); rc != nil || err != nil {
		t.Errorf("no variable: got %v, %v", rc, err)
	}
	bad := []struct{ env, want string }{
		{`{"zscore":`, "DRIFTD_PLUGIN_REATTACH"},
		{`{"zscore":{"protocol":"grpc","protocol_version":1,"network":"pipe","addr":"x"}}`, "neither unix nor tcp"},
		{`{"zscore":{"protocol":"netrpc","protocol_version":1,"network":"unix","addr":"x"}}`, "want grpc"},
		{`{"zscore":{"protocol":"grpc","protocol_version":2,"network":"unix","addr":"x"}}`, "protocol version 2"},
	}
	for _, b := range bad {
		if _, err := reattachFor(b.env, "zscore"); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want one saying %q", b.env, err, b.want)
		}
	}
}
