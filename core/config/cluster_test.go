package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCluster(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file string
		want *Cluster
		// Where cluster.spool.max_bytes is, or its nearest block.
		spoolLine, spoolCol int
	}{
		{
			file: "testdata/good/cluster.hcl",
			want: &Cluster{
				Servers:            []string{"nats://10.0.0.5:4222", "tls://nats-2.example.com", "10.0.0.7:4222", "nats://[::1]:4223"},
				Name:               "drift_prod-1",
				Instance:           "web-3",
				Partitions:         128,
				Replicas:           5,
				LeaseTTL:           1500 * time.Millisecond,
				CheckpointInterval: 10 * time.Second,
				Credentials:        "cluster/nats.creds",
				TLS:                &ClusterTLS{CA: "cluster/ca.pem", Cert: "cluster/client.pem", Key: "cluster/client.key"},
				Spool:              Spool{MaxBytes: 512 << 20},
			},
			spoolLine: 24, spoolCol: 17,
		},
		{
			file: "testdata/good/cluster_defaults.hcl",
			want: &Cluster{
				Servers:            []string{"nats://127.0.0.1:4222"},
				Name:               "driftd",
				Instance:           InstanceName(host),
				Partitions:         64,
				Replicas:           3,
				LeaseTTL:           2 * time.Second,
				CheckpointInterval: 5 * time.Second,
				Spool:              Spool{MaxBytes: 1 << 30},
			},
			spoolLine: 2, spoolCol: 1, // the cluster block
		},
		{file: "testdata/good/empty.hcl", want: nil},
	} {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			f, diags := parseFile(t, tt.file)
			if f == nil || diags != "" {
				t.Fatalf("diagnostics:\n%s", diags)
			}
			if tt.want == nil {
				if f.Cluster != nil {
					t.Fatalf("Cluster = %+v without a cluster block", f.Cluster)
				}
				return
			}
			if f.Cluster == nil {
				t.Fatal("no Cluster")
			}
			got := *f.Cluster
			if got.DefRange.Filename != tt.file || got.DefRange.Start.Line != 2 {
				t.Errorf("DefRange = %s, want line 2 of %s", got.DefRange, tt.file)
			}
			got.DefRange = tt.want.DefRange
			if !reflect.DeepEqual(&got, tt.want) {
				t.Errorf("Cluster = %+v (TLS %+v)\nwant      %+v (TLS %+v)", got, got.TLS, *tt.want, tt.want.TLS)
			}
			if r := f.Place("cluster.spool.max_bytes"); r.Start.Line != tt.spoolLine || r.Start.Column != tt.spoolCol {
				t.Errorf("Place(cluster.spool.max_bytes) = %s, want line %d column %d", r, tt.spoolLine, tt.spoolCol)
			}
		})
	}
}

// Load resolves the paths of the cluster block against the file's
// directory, as it does the others.
func TestLoadClusterPaths(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	f, diags := Load(filepath.Join(dir, "cluster.hcl"))
	if f == nil || len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", FormatDiagnostics(diags))
	}
	c := f.Cluster
	want := filepath.Join(dir, "cluster")
	if c.Credentials != filepath.Join(want, "nats.creds") || c.TLS.CA != filepath.Join(want, "ca.pem") ||
		c.TLS.Cert != filepath.Join(want, "client.pem") || c.TLS.Key != filepath.Join(want, "client.key") {
		t.Errorf("paths not resolved against %s: credentials %q, tls %+v", dir, c.Credentials, *c.TLS)
	}
}

// The credentials and TLS files are looked for relative to the file's
// directory, not the working directory.
func TestClusterFilesRelativeToTheConfig(t *testing.T) {
	src := []byte("cluster {\n  servers = [\"nats://127.0.0.1:4222\"]\n  credentials = \"cluster/nats.creds\"\n}\n")
	if f, diags := Parse("testdata/good/here.hcl", src); f == nil {
		t.Errorf("next to the creds file:\n%s", FormatDiagnostics(diags))
	}
	f, diags := Parse("elsewhere/here.hcl", src)
	want := `elsewhere/here.hcl:3:17: error: Invalid credentials: credentials must name a NATS credentials file (.creds), ` +
		`relative to the config file's directory or absolute; cannot read elsewhere/cluster/nats.creds: no such file or directory.`
	if f != nil || FormatDiagnostics(diags) != want {
		t.Errorf("got %q, want %q", FormatDiagnostics(diags), want)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64 // -1: an error
	}{
		{"1GiB", 1 << 30},
		{"512MiB", 512 << 20},
		{"100MB", 100_000_000},
		{"1048576", 1 << 20},
		{"1.5GiB", 3 << 29},
		{"2 TiB", 2 << 40},
		{"10kb", 10_000},
		{"4KiB", 4096},
		{"1gib", 1 << 30},
		{"7B", 7},
		{" 3MB ", 3_000_000},
		{"0.5B", 0},
		{"8EiB", -1},
		{"1Gb/s", -1},
		{"1.5", -1}, // a fraction of a byte needs a unit
		{"", -1},
		{"MiB", -1},
		{"-1MiB", -1},
		{"1e6", -1},
		{"9223372036854775807", 1<<63 - 1},
		{"9223372036854775808", -1},
		{"8388608TiB", -1},
	} {
		got, err := ParseSize(tt.in)
		switch {
		case tt.want < 0 && err == nil:
			t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
		case tt.want >= 0 && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{{1 << 30, "1GiB"}, {512 << 20, "512MiB"}, {1 << 20, "1MiB"}, {3072, "3KiB"}, {1536, "1536B"}, {1000, "1000B"}, {0, "0B"}, {3 << 40, "3TiB"}} {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if n, err := ParseSize(FormatSize(tt.in)); err != nil || n != tt.in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.in, n, err)
		}
	}
}

func TestInstanceName(t *testing.T) {
	long := strings.Repeat("a", 60) + ".example.com"
	for _, tt := range []struct{ host, want string }{
		{"web-3", "web-3"},
		{"web-3.prod.example.com", "web-3-prod-example-com"},
		{"Node_7", "Node_7"},
		{"höst", "h--st"}, // each byte of a non-ASCII letter
	} {
		if got := InstanceName(tt.host); got != tt.want {
			t.Errorf("InstanceName(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	a, b := InstanceName(long), InstanceName(long+"x")
	if len(a) != MaxInstance || len(b) != MaxInstance || a == b || !clusterNameRe.MatchString(a) ||
		!strings.HasPrefix(a, strings.Repeat("a", 55)+"-") {
		t.Errorf("long host names: %q and %q, want distinct, %d characters, from the name's head", a, b, MaxInstance)
	}
}

func TestClusterChanges(t *testing.T) {
	base := func() *Cluster {
		return &Cluster{
			Servers: []string{"nats://a:4222", "nats://b:4222"}, Name: "driftd", Instance: "h1", Partitions: 64, Replicas: 3,
			LeaseTTL: 2 * time.Second, CheckpointInterval: 5 * time.Second, Spool: Spool{MaxBytes: 1 << 30},
		}
	}
	for _, tt := range []struct {
		name    string
		running *Cluster
		edit    func(c *Cluster) *Cluster
		want    []string
	}{
		{"none", nil, func(*Cluster) *Cluster { return nil }, nil},
		{"same, written elsewhere", base(), func(c *Cluster) *Cluster { c.DefRange.Start.Line = 40; return c }, nil},
		{"added", nil, func(c *Cluster) *Cluster { return c }, []string{"cluster"}},
		{"removed", base(), func(*Cluster) *Cluster { return nil }, []string{"cluster"}},
		{"servers reordered", base(), func(c *Cluster) *Cluster { slices.Reverse(c.Servers); return c }, []string{"cluster.servers"}},
		{"partitions and spool", base(), func(c *Cluster) *Cluster { c.Partitions = 32; c.Spool.MaxBytes = 1 << 20; return c },
			[]string{"cluster.partitions", "cluster.spool"}},
		{"tls added", base(), func(c *Cluster) *Cluster { c.TLS = &ClusterTLS{}; return c }, []string{"cluster.tls"}},
		{"every other setting", base(), func(c *Cluster) *Cluster {
			c.Name, c.Instance, c.Replicas, c.LeaseTTL, c.CheckpointInterval, c.Credentials = "x", "h2", 1, time.Second, time.Second, "c.creds"
			return c
		}, []string{"cluster.name", "cluster.instance", "cluster.replicas", "cluster.lease_ttl", "cluster.checkpoint_interval", "cluster.credentials"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := tt.edit(base())
			if got := tt.running.Changes(next); !slices.Equal(got, tt.want) {
				t.Errorf("Changes = %q, want %q", got, tt.want)
			}
		})
	}
	running, next := base(), base()
	running.TLS, next.TLS = &ClusterTLS{CA: "a.pem"}, &ClusterTLS{CA: "b.pem"}
	if got := running.Changes(next); !slices.Equal(got, []string{"cluster.tls"}) {
		t.Errorf("another CA: Changes = %q", got)
	}
}
