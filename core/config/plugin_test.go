package config

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/driftd/driftd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// pluginSchemas are copies of the schemas the bundled plugins declare.
var pluginSchemas = map[string]sdk.Schema{
	"threshold": {Attributes: []sdk.Attribute{
		{Name: "window", Type: sdk.TypeNumber, Default: 100.0},
		{Name: "min_samples", Type: sdk.TypeNumber},
		{Name: "floor", Type: sdk.TypeNumber},
		{Name: "ceiling", Type: sdk.TypeNumber},
	}},
	"pagehinkley": {Attributes: []sdk.Attribute{
		{Name: "min_instances", Type: sdk.TypeNumber, Default: 30.0},
		{Name: "delta", Type: sdk.TypeNumber, Default: 0.005},
		{Name: "threshold", Type: sdk.TypeNumber, Default: 50.0},
		{Name: "alpha", Type: sdk.TypeNumber, Default: 0.9999},
		{Name: "mode", Type: sdk.TypeString, Default: "both"},
	}},
}

var testSchema = sdk.Schema{Attributes: []sdk.Attribute{
	{Name: "floor", Type: sdk.TypeNumber, Required: true},
	{Name: "min_samples", Type: sdk.TypeNumber, Default: 30.0},
	{Name: "mode", Type: sdk.TypeString, Default: "down"},
	{Name: "strict", Type: sdk.TypeBool},
	{Name: "headers", Type: sdk.TypeStringMap},
}}

// detectorBody parses a detector whose body holds inner, from line 3 of
// plugin.hcl on, and returns the detector.
func detectorBody(t *testing.T, inner string) *Detector {
	t.Helper()
	src := "detector \"threshold\" \"t\" {\n  metric = \"accuracy\"\n" + inner + "}\n" +
		"monitor \"*\" {\n  detectors = [\"threshold.t\"]\n}\n"
	f, diags := Parse("plugin.hcl", []byte(src))
	if f == nil || len(diags) != 0 {
		t.Fatalf("Parse:\n%s", FormatDiagnostics(diags))
	}
	return f.Detectors[0]
}

func TestDecodePluginConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner string
		env   map[string]string
		want  sdk.Config
		diags string
	}{
		{
			name:  "all types",
			inner: "  config {\n    floor = 0.9\n    min_samples = 100\n    mode = \"up\"\n    strict = true\n  }\n",
			want:  sdk.Config{"floor": 0.9, "min_samples": 100.0, "mode": "up", "strict": true},
		},
		{
			name:  "map of strings",
			inner: "  config {\n    floor = 1\n    headers = { Authorization = \"Bearer ${env(\"DRIFTD_TEST_TOKEN\")}\", \"X-Team\" = \"ml\", Retries = 3 }\n  }\n",
			env:   map[string]string{"DRIFTD_TEST_TOKEN": "t0k"},
			want:  sdk.Config{"floor": 1.0, "headers": map[string]string{"Authorization": "Bearer t0k", "X-Team": "ml", "Retries": "3"}},
		},
		{
			name:  "map of strings, wrong type",
			inner: "  config {\n    floor = 1\n    headers = \"Authorization: x\"\n  }\n",
			diags: "plugin.hcl:5:15: error: Incorrect attribute value type: Inappropriate value for attribute \"headers\": map of string required, but have string.",
		},
		{
			name:  "no defaults applied",
			inner: "  config { floor = 1 }\n",
			want:  sdk.Config{"floor": 1.0},
		},
		{
			name:  "false",
			inner: "  config {\n    floor = 0.5\n    strict = false\n  }\n",
			want:  sdk.Config{"floor": 0.5, "strict": false},
		},
		{
			name:  "expressions",
			inner: "  config {\n    floor = 1 - 0.25\n    mode = \"u${\"p\"}\"\n  }\n",
			want:  sdk.Config{"floor": 0.75, "mode": "up"},
		},
		{
			name:  "env",
			inner: "  config {\n    floor = 0.9\n    mode = env(\"DRIFTD_TEST_MODE\")\n  }\n",
			env:   map[string]string{"DRIFTD_TEST_MODE": "both"},
			want:  sdk.Config{"floor": 0.9, "mode": "both"},
		},
		{
			name:  "env default",
			inner: "  config {\n    floor = 0.9\n    mode = env(\"DRIFTD_TEST_SURELY_UNSET\", \"up\")\n  }\n",
			want:  sdk.Config{"floor": 0.9, "mode": "up"},
		},
		{
			name:  "env number",
			inner: "  config { floor = env(\"DRIFTD_TEST_FLOOR\") }\n",
			env:   map[string]string{"DRIFTD_TEST_FLOOR": "0.8"},
			want:  sdk.Config{"floor": 0.8},
		},
		{
			name:  "env unset",
			inner: "  config {\n    floor = 0.9\n    mode = env(\"DRIFTD_TEST_SURELY_UNSET\")\n  }\n",
			diags: `plugin.hcl:5:17: error: Invalid function argument: Invalid value for "name" parameter: environment variable "DRIFTD_TEST_SURELY_UNSET" is not set in the environment of this process (config.test), which env() reads; set it, give a default as in env("DRIFTD_TEST_SURELY_UNSET", "value"), or read a secret from a file with file("path"), which every load reads again.`,
		},
		{
			name:  "wrong type",
			inner: "  config {\n    floor = \"high\"\n    strict = \"maybe\"\n  }\n",
			diags: "plugin.hcl:4:13: error: Incorrect attribute value type: Inappropriate value for attribute \"floor\": a number is required.\n" +
				"plugin.hcl:5:14: error: Incorrect attribute value type: Inappropriate value for attribute \"strict\": a bool is required.",
		},
		{
			name:  "unknown attribute",
			inner: "  config {\n    floor = 0.9\n    treshold = 3\n  }\n",
			diags: `plugin.hcl:5:5: error: Unsupported argument: An argument named "treshold" is not expected here.`,
		},
		{
			name:  "unknown attribute with suggestion",
			inner: "  config {\n    flor = 0.9\n  }\n",
			diags: "plugin.hcl:3:10: error: Missing required argument: The argument \"floor\" is required, but no definition was found.\n" +
				"plugin.hcl:4:5: error: Unsupported argument: An argument named \"flor\" is not expected here. Did you mean \"floor\"?",
		},
		{
			name:  "nested block",
			inner: "  config {\n    floor = 0.9\n    extra {\n    }\n  }\n",
			diags: `plugin.hcl:5:5: error: Unsupported block type: Blocks of type "extra" are not expected here.`,
		},
		{
			name:  "missing required",
			inner: "  config {\n    mode = \"up\"\n  }\n",
			diags: `plugin.hcl:3:10: error: Missing required argument: The argument "floor" is required, but no definition was found.`,
		},
		{
			name:  "missing required without config block",
			inner: "",
			diags: `plugin.hcl:1:1: error: Missing required argument: The argument "floor" is required, but no definition was found.`,
		},
		{
			name:  "required null",
			inner: "  config { floor = null }\n",
			diags: `plugin.hcl:3:20: error: Missing required argument: The argument "floor" is required and must not be null.`,
		},
		{
			name:  "optional null is absent",
			inner: "  config {\n    floor = 2\n    mode = null\n  }\n",
			want:  sdk.Config{"floor": 2.0},
		},
		{
			name:  "too large",
			inner: "  config { floor = 1e400 }\n",
			diags: `plugin.hcl:3:20: error: Invalid value for "floor": The number is too large.`,
		},
		{
			name:  "variables",
			inner: "  config { floor = var.floor }\n",
			diags: `plugin.hcl:3:20: error: Variables not allowed: Variables may not be used here.`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, "DRIFTD_TEST_SURELY_UNSET")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			d := detectorBody(t, tc.inner)
			cfg, diags := DecodePluginConfig(d.Body, testSchema)
			if got := FormatDiagnostics(diags); got != tc.diags {
				t.Fatalf("diagnostics:\ngot:  %s\nwant: %s", got, tc.diags)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("config = %#v, want %#v", cfg, tc.want)
			}
		})
	}
}

func TestDecodePluginConfigEdges(t *testing.T) {
	t.Run("nil body, empty schema", func(t *testing.T) {
		cfg, diags := DecodePluginConfig(nil, sdk.Schema{})
		if len(diags) != 0 || cfg == nil || len(cfg) != 0 {
			t.Errorf("got %v, %s", cfg, FormatDiagnostics(diags))
		}
	})
	t.Run("empty schema refuses attributes", func(t *testing.T) {
		d := detectorBody(t, "  config { floor = 1 }\n")
		_, diags := DecodePluginConfig(d.Body, sdk.Schema{})
		want := `plugin.hcl:3:12: error: Unsupported argument: An argument named "floor" is not expected here.`
		if got := FormatDiagnostics(diags); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("invalid schema", func(t *testing.T) {
		d := detectorBody(t, "  config { floor = 1 }\n")
		schema := sdk.Schema{Attributes: []sdk.Attribute{{Name: "floor", Type: "float"}}}
		_, diags := DecodePluginConfig(d.Body, schema)
		want := `plugin.hcl:3:12: error: Invalid plugin schema: The plugin declares an invalid config schema: attribute "floor": unknown type "float".`
		if got := FormatDiagnostics(diags); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("result passes Schema.Apply", func(t *testing.T) {
		d := detectorBody(t, "  config {\n    floor = 0.9\n    strict = true\n  }\n")
		cfg, diags := DecodePluginConfig(d.Body, testSchema)
		if diags.HasErrors() {
			t.Fatal(FormatDiagnostics(diags))
		}
		full, err := testSchema.Apply(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := sdk.Config{"floor": 0.9, "min_samples": 30.0, "mode": "down", "strict": true}
		if !reflect.DeepEqual(full, want) {
			t.Errorf("Apply = %v, want %v", full, want)
		}
	})
}

func TestConfigErrorDiagnostics(t *testing.T) {
	inner := "  config {\n    floor = 0.9\n    mode  = \"sideways\"\n  }\n"
	modeErr := &sdk.ConfigError{Attribute: "mode", Message: `must be one of up, down, both, not "sideways"`}
	for _, tc := range []struct {
		name     string
		inner    string
		defRange bool
		err      error
		want     string
	}{
		{name: "nil", inner: inner, err: nil, want: ""},
		{
			name: "attribute", inner: inner, err: modeErr,
			want: `plugin.hcl:5:13: error: Invalid value for "mode": must be one of up, down, both, not "sideways".`,
		},
		{
			name: "wrapped", inner: inner, err: fmt.Errorf("configure: %w", modeErr),
			want: `plugin.hcl:5:13: error: Invalid value for "mode": must be one of up, down, both, not "sideways".`,
		},
		{
			name: "several", inner: inner,
			err: errors.Join(
				&sdk.ConfigError{Attribute: "floor", Message: "must be below ceiling."},
				modeErr,
				&sdk.ConfigError{Attribute: "ceiling", Message: "required attribute is missing"},
				&sdk.ConfigError{Message: "set floor or ceiling"},
				errors.New("plugin exploded"),
			),
			want: "plugin.hcl:4:13: error: Invalid value for \"floor\": must be below ceiling.\n" +
				"plugin.hcl:5:13: error: Invalid value for \"mode\": must be one of up, down, both, not \"sideways\".\n" +
				"plugin.hcl:3:3: error: Invalid plugin configuration: ceiling: required attribute is missing.\n" +
				"plugin.hcl:3:3: error: Invalid plugin configuration: set floor or ceiling.\n" +
				"plugin.hcl:3:3: error: Invalid plugin configuration: plugin exploded.",
		},
		{
			name: "no config block", inner: "",
			err:  errors.Join(&sdk.ConfigError{Attribute: "floor", Message: "required attribute is missing"}),
			want: `plugin.hcl:1:1: error: Invalid plugin configuration: floor: required attribute is missing.`,
		},
		{
			name: "empty defRange uses the body", inner: inner, defRange: true,
			err:  &sdk.ConfigError{Message: "bad"},
			want: `plugin.hcl:3:10: error: Invalid plugin configuration: bad.`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := detectorBody(t, tc.inner)
			rng := d.ConfigRange
			if tc.defRange {
				rng = hcl.Range{}
			}
			diags := ConfigErrorDiagnostics(d.Body, rng, tc.err)
			if got := FormatDiagnostics(diags); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if tc.err == nil && diags != nil {
				t.Errorf("diagnostics for a nil error: %v", diags)
			}
		})
	}
}
