package sdktest

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/driftd/driftd/sdk"
)

// ConfigErrorAttributes returns the attributes that err's config errors
// (sdk.ConfigErrors) name, in the order err gives them.
func ConfigErrorAttributes(err error) []string {
	var attrs []string
	for _, ce := range sdk.ConfigErrors(err) {
		attrs = append(attrs, ce.Attribute)
	}
	return attrs
}

// CheckConfigErrors fails the test unless err is an sdk.ErrInvalidConfig
// whose config errors name exactly the attributes want, in any order: what
// a refused Configure returns, in process or over gRPC.
func CheckConfigErrors(t testing.TB, err error, want ...string) {
	t.Helper()
	got := slices.Sorted(slices.Values(ConfigErrorAttributes(err)))
	if !errors.Is(err, sdk.ErrInvalidConfig) || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("config errors on %v (%v), want an sdk.ErrInvalidConfig on %v", got, err, want)
	}
}

// CheckConfigure is one row of a detector's Configure table. configure is
// the detector's Configure and streams the sdk.Streams it embeds. With want
// nil, cfg must be accepted and streams.New set; otherwise Configure must
// return an sdk.ErrInvalidConfig whose config errors name exactly the
// attributes want, in order, and leave streams.New unset.
func CheckConfigure(t testing.TB, configure func(sdk.Config) error, streams *sdk.Streams, cfg sdk.Config, want []string) {
	t.Helper()
	err := configure(cfg)
	if want == nil {
		if err != nil {
			t.Fatalf("Configure: %v", err)
		}
		if streams.New == nil {
			t.Fatal("Configure left Streams.New unset")
		}
		return
	}
	if !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("Configure = %v, want an sdk.ErrInvalidConfig", err)
	}
	if attrs := ConfigErrorAttributes(err); !slices.Equal(attrs, want) {
		t.Errorf("errors on %v, want on %v (%v)", attrs, want, err)
	}
	if streams.New != nil {
		t.Error("a refused config set Streams.New")
	}
}

// CheckSchema checks a detector's schema: it is valid, every attribute has
// a description, the attributes with a default are those want names, and
// the schema applied to an empty config gives want.
func CheckSchema(t testing.TB, s sdk.Schema, want sdk.Config) {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, a := range s.Attributes {
		if _, ok := want[a.Name]; a.Description == "" || (a.Default != nil) != ok {
			t.Errorf("attribute %q lacks a description, or a default is wrongly there or missing", a.Name)
		}
	}
	cfg, err := s.Apply(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults %v, want %v", cfg, want)
	}
}

// Configure calls d.Configure(cfg) in process, without RPC and without the
// schema's defaults (the detector fills in what cfg lacks), and returns d.
// A config d refuses fails the test.
func Configure[D interface{ Configure(sdk.Config) error }](t testing.TB, d D, cfg sdk.Config) D {
	t.Helper()
	if err := d.Configure(cfg); err != nil {
		t.Fatalf("Configure(%v): %v", cfg, err)
	}
	return d
}
