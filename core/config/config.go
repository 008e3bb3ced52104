// Package config parses and validates driftd's HCL configuration file.
//
// The daemon uses it in two phases. Parse (or Load) reads the static
// structure of the file and checks everything that needs no plugin: types,
// names, globs, durations and the references between monitors, detectors and
// sinks. The daemon then starts the plugins the file names (Plugins) and asks
// each for its schema; DecodePluginConfig checks a detector's or sink's
// config block against that schema, and ConfigErrorDiagnostics places the
// errors a plugin's Configure returns at the attributes they concern.
//
// Every problem is a diagnostic with file:line:col, and all of them are
// reported at once.
package config

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/driftd/driftd/core/metric"
)

// Defaults for everything the file may leave out.
const (
	DefaultDataDir          = "./data"
	DefaultPluginDir        = "./bin/plugins"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
	DefaultSocket           = "./driftd.sock"
	DefaultSocketMode       = os.FileMode(0o660)
	DefaultIdleTimeout      = 2 * time.Minute
	DefaultBodyTimeout      = 30 * time.Second
	DefaultMaxLineBytes     = 1 << 20  // 1 MiB
	DefaultMaxDocumentBytes = 16 << 20 // 16 MiB
	DefaultMaxValuesPerLine = 64
	DefaultStreamSeries     = 1000
	DefaultMaxStreams       = 100_000
	DefaultEventsHistory    = 10000
	DefaultEventsBuffer     = 1024
	DefaultWindow           = 1000
	DefaultCooldown         = 15 * time.Minute
	DefaultExpireAfter      = 168 * time.Hour
	DefaultSnapshotInterval = 30 * time.Second
	DefaultPluginTimeout    = 10 * time.Second

	// MaxWindow is the largest window a monitor may ask for.
	MaxWindow = 1_000_000
	// MaxValuesPerLine and MaxStreams bound ingest's max_values_per_line
	// and max_streams.
	MaxValuesPerLine = 1_000_000
	MaxStreams       = 100_000_000
	// MinPluginTimeout and MaxPluginTimeout bound plugin_timeout.
	MinPluginTimeout = 100 * time.Millisecond
	MaxPluginTimeout = 10 * time.Minute
	// MinSnapshotInterval is the shortest snapshot_interval but 0.
	MinSnapshotInterval = 100 * time.Millisecond
	// MinExpireAfter is the shortest expire_after but "off".
	MinExpireAfter = time.Second
	// MaxStreamSeries bounds telemetry.stream_series.
	MaxStreamSeries = 1_000_000
	// MaxConnections bounds listen.max_connections.
	MaxConnections = 1_000_000
	// MinListenTimeout and MaxListenTimeout bound idle_timeout and
	// body_timeout.
	MinListenTimeout = 100 * time.Millisecond
	MaxListenTimeout = 24 * time.Hour
)

// LogLevels and LogFormats list the values log_level and log_format accept.
var (
	LogLevels  = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// File is a parsed and validated config file.
type File struct {
	Filename  string
	DataDir   string
	PluginDir string
	LogLevel  string
	LogFormat string
	Listen    Listen
	Ingest    Ingest
	Events    Events
	Telemetry Telemetry
	// Cluster is the cluster block, which makes the host one of a fleet;
	// nil when there is none: the host works alone.
	Cluster   *Cluster
	Detectors []*Detector // in file order
	Sinks     []*Sink     // in file order
	Monitors  []*Monitor  // in file order
	Hash      [32]byte    // sha256 of the source
	ReadFiles [32]byte    // sha256 of what the file's file() calls read when it was parsed
	// Places says where the settings outside detector, sink and monitor
	// blocks were written: the value of each attribute, keyed by its name
	// ("data_dir") or blocks and name ("listen.socket",
	// "cluster.spool.max_bytes"), and the header of each such block
	// ("listen", "cluster.spool"). Settings left at their default have no
	// place; the map is nil when there is none.
	Places map[string]hcl.Range

	// PluginTimeout is the deadline of every call to a plugin; a plugin
	// that does not answer in time is killed and restarted.
	PluginTimeout time.Duration
	// Binaries are the plugin blocks, in file order: plugins whose binary
	// is not plugin_dir/driftd-plugin-<name>, or has a known sha256.
	Binaries []*PluginBinary

	// SnapshotInterval is how often the windows are written to data_dir;
	// 0 writes them only when the daemon stops.
	SnapshotInterval time.Duration
}

// Place returns where the setting key (a key of Places) was written, or
// where the innermost block around it was ("cluster.spool" for
// "cluster.spool.max_bytes", then "cluster"), or the file itself when
// none was written.
func (f *File) Place(key string) hcl.Range {
	for {
		if r, ok := f.Places[key]; ok {
			return r
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return hcl.Range{Filename: f.Filename}
		}
		key = key[:i]
	}
}

// Listen is the listen block: where the API socket and metrics live, and
// the limits on the socket's connections.
type Listen struct {
	Socket     string
	SocketMode os.FileMode
	Metrics    string // optional host:port for GET /metrics over TCP
	// HTTP is an optional host:port serving the status page and the
	// read-only API it reads over TCP.
	HTTP string
	// MaxConnections caps the connections open on the socket at once; 0
	// (unset) derives the cap from the open-file limit when the daemon
	// starts.
	MaxConnections int
	// IdleTimeout closes a keep-alive connection that sends no request
	// for that long.
	IdleTimeout time.Duration
	// BodyTimeout ends a request whose body sends no byte for that long.
	BodyTimeout time.Duration
}

// Ingest is the ingest block: limits on metric request bodies and on
// what the metrics make the daemon hold.
type Ingest struct {
	MaxLineBytes     int64
	MaxDocumentBytes int64
	// MaxValuesPerLine bounds the values of one metric: a line with more
	// is rejected.
	MaxValuesPerLine int
	// MaxStreams bounds the streams (model, version, metric) the windows
	// hold: a line that would create one more is rejected. A lower limit
	// after a reload refuses new streams only.
	MaxStreams int
}

// ReaderLimits are the limits of the ingest block for a metric.Reader.
func (in Ingest) ReaderLimits() metric.Limits {
	return metric.Limits{
		MaxLineBytes:     int(in.MaxLineBytes),
		MaxDocumentBytes: int(in.MaxDocumentBytes),
		MaxValues:        in.MaxValuesPerLine,
	}
}

// Telemetry is the telemetry block: what GET /metrics shows.
type Telemetry struct {
	// StreamSeries caps the streams (model, version, metric) that get
	// series of their own; 0 for none.
	StreamSeries int
}

// Events is the events block: the event history and subscriber buffers.
type Events struct {
	History int // events kept for since= replay
	Buffer  int // events buffered per subscriber
}

// Detector is a detector block: detector "<plugin>" "<name>".
type Detector struct {
	Plugin string
	Name   string
	Metric string
	// Body is the config block's body, for DecodePluginConfig. It is an
	// empty body placed at the detector block when there is no config block.
	Body hcl.Body
	// DefRange is the block header; ConfigRange the config block's header,
	// or DefRange when there is none.
	DefRange    hcl.Range
	ConfigRange hcl.Range
}

// ID returns "<plugin>.<name>", the name monitors and events use.
func (d *Detector) ID() string { return d.Plugin + "." + d.Name }

// Sink is a sink block: sink "<plugin>" "<name>".
type Sink struct {
	Plugin      string
	Name        string
	Body        hcl.Body // as Detector.Body
	DefRange    hcl.Range
	ConfigRange hcl.Range
	// Timeout bounds one delivery call to the plugin.
	Timeout time.Duration
	Retry   Retry
}

// Retry says how a sink's failed deliveries are retried: after
// InitialBackoff, doubling up to MaxBackoff, with jitter, until MaxAttempts
// attempts were made (0: no limit) or the job is MaxAge old (0: no limit).
// Then the job fails, and stays in the outbox for inspection.
type Retry struct {
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	MaxAttempts    int
	MaxAge         time.Duration
}

// The delivery defaults of a sink.
var (
	DefaultSinkTimeout = 30 * time.Second
	DefaultRetry       = Retry{InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, MaxAttempts: 20, MaxAge: 24 * time.Hour}
)

// ID returns "<plugin>.<name>", the name monitors use.
func (s *Sink) ID() string { return s.Plugin + "." + s.Name }

// PluginBinary is a plugin block: plugin "<name>" { path = "..." sha256 = "..." }.
// The detector and sink blocks of that plugin run the binary at Path instead
// of plugin_dir/driftd-plugin-<name>; when SHA256 is set, the binary must
// have that hash each time it is started.
type PluginBinary struct {
	Name string
	// Path is the binary; Load resolves a relative path against the
	// file's directory.
	Path string
	// SHA256 is the binary's expected sha256 in lowercase hex, or "".
	SHA256      string
	DefRange    hcl.Range
	SHA256Range hcl.Range // the sha256 value, when set
}

// Monitor is a monitor block: which detectors and sinks watch the models its
// pattern matches.
type Monitor struct {
	Pattern   string   // model name or path.Match glob
	Versions  []string // path.Match globs
	Window    int
	Detectors []string // detector IDs, "<plugin>.<name>"
	Sinks     []string // sink IDs, "<plugin>.<name>"
	Cooldown  time.Duration
	// ExpireAfter retires a model version whose windows received nothing
	// for this long; 0 (expire_after = "off" or "0") never does.
	ExpireAfter time.Duration
	DefRange    hcl.Range
}

// Load reads and parses the file at path. Relative data_dir, plugin_dir and
// socket paths are resolved against the file's directory, so they mean the
// same whatever directory driftd is started from. The results are joined
// onto filepath.Dir(path): relative to the working directory when path is
// (which keeps the socket path short), absolute when path is.
func Load(path string) (*File, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read config file",
			Detail:   fmt.Sprintf("%s.", err),
			Subject:  &hcl.Range{Filename: path},
		}}
	}
	f, diags := Parse(path, src)
	if f == nil {
		return nil, diags
	}
	dir := filepath.Dir(path)
	f.DataDir = resolve(dir, f.DataDir)
	f.PluginDir = resolve(dir, f.PluginDir)
	f.Listen.Socket = resolve(dir, f.Listen.Socket)
	for _, b := range f.Binaries {
		b.Path = resolve(dir, b.Path)
	}
	if f.Cluster != nil {
		f.Cluster.resolvePaths(dir)
	}
	return f, diags
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// Parse parses and validates src, the contents of the file called filename.
// Paths are kept as written; Load resolves them. The File is nil when diags
// holds an error; warnings come with a File. Diagnostics are sorted by
// position.
func Parse(filename string, src []byte) (*File, hcl.Diagnostics) {
	hf, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		// The rest would only repeat the syntax error in other words.
		return nil, sortDiagnostics(diags)
	}
	f := &File{
		Filename:  filename,
		DataDir:   DefaultDataDir,
		PluginDir: DefaultPluginDir,
		LogLevel:  DefaultLogLevel,
		LogFormat: DefaultLogFormat,
		Listen:    Listen{Socket: DefaultSocket, SocketMode: DefaultSocketMode, IdleTimeout: DefaultIdleTimeout, BodyTimeout: DefaultBodyTimeout},
		Ingest: Ingest{MaxLineBytes: DefaultMaxLineBytes, MaxDocumentBytes: DefaultMaxDocumentBytes,
			MaxValuesPerLine: DefaultMaxValuesPerLine, MaxStreams: DefaultMaxStreams},
		Events:    Events{History: DefaultEventsHistory, Buffer: DefaultEventsBuffer},
		Telemetry: Telemetry{StreamSeries: DefaultStreamSeries},
		Hash:      sha256.Sum256(src),
	}
	f.SnapshotInterval = DefaultSnapshotInterval
	f.PluginTimeout = DefaultPluginTimeout
	p := &parser{ctx: evalContext(filepath.Dir(filename))}
	p.diags = append(p.diags, diags...)
	p.file(f, hf.Body, filepath.Dir(filename))
	p.references(f)
	diags = sortDiagnostics(p.diags)
	if diags.HasErrors() {
		return nil, diags
	}
	f.ReadFiles = readFilesDigest(hf.Body, p.ctx)
	return f, diags
}

// Plugins returns the distinct plugin names of the detector and sink blocks,
// sorted: the plugins the daemon has to start.
func (f *File) Plugins() []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, d := range f.Detectors {
		add(d.Plugin)
	}
	for _, s := range f.Sinks {
		add(s.Plugin)
	}
	slices.Sort(out)
	return out
}

// Binary returns the plugin block of the named plugin, or nil.
func (f *File) Binary(name string) *PluginBinary {
	for _, b := range f.Binaries {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// PluginPath returns the binary of the named plugin: the path of its plugin
// block, or driftd-plugin-<name> in plugin_dir. A plugin name is 1 to 64 of
// [a-z0-9_-], so the latter never leaves plugin_dir.
func (f *File) PluginPath(name string) string {
	if b := f.Binary(name); b != nil {
		return b.Path
	}
	return filepath.Join(f.PluginDir, "driftd-plugin-"+name)
}

// Detector returns the detector with the given ID, or nil.
func (f *File) Detector(id string) *Detector {
	for _, d := range f.Detectors {
		if d.ID() == id {
			return d
		}
	}
	return nil
}

// Sink returns the sink with the given ID, or nil.
func (f *File) Sink(id string) *Sink {
	for _, s := range f.Sinks {
		if s.ID() == id {
			return s
		}
	}
	return nil
}
