package config

import (
	"fmt"
	"math"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/driftd/driftd/core/metric"
)

var (
	pluginNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	blockNameRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "data_dir"},
		{Name: "plugin_dir"},
		{Name: "log_level"},
		{Name: "log_format"},
		{Name: "snapshot_interval"},
		{Name: "plugin_timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "listen"},
		{Type: "ingest"},
		{Type: "events"},
		{Type: "telemetry"},
		{Type: "cluster"},
		{Type: "detector", LabelNames: []string{"plugin", "name"}},
		{Type: "sink", LabelNames: []string{"plugin", "name"}},
		{Type: "monitor", LabelNames: []string{"pattern"}},
		{Type: "plugin", LabelNames: []string{"name"}},
	},
}

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "path", Required: true},
		{Name: "sha256"},
	},
}

var sha256Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

var listenSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "socket"},
		{Name: "socket_mode"},
		{Name: "metrics"},
		{Name: "http"},
		{Name: "max_connections"},
		{Name: "idle_timeout"},
		{Name: "body_timeout"},
	},
}

var ingestSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "max_line_bytes"},
		{Name: "max_document_bytes"},
		{Name: "max_values_per_line"},
		{Name: "max_streams"},
	},
}

var eventsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "history"},
		{Name: "buffer"},
	},
}

var telemetrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "stream_series"},
	},
}

var detectorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "metric", Required: true},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "config"},
	},
}

var sinkSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "config"},
		{Type: "retry"},
	},
}

var retrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "initial_backoff"},
		{Name: "max_backoff"},
		{Name: "max_attempts"},
		{Name: "max_age"},
	},
}

var monitorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "versions"},
		{Name: "window"},
		{Name: "detectors"},
		{Name: "sinks"},
		{Name: "cooldown"},
		{Name: "expire_after"},
	},
}

// parser collects the diagnostics of one Parse.
type parser struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics

	// Where each singleton block and each ID was first defined.
	singletons map[string]hcl.Range
	detectors  map[string]*Detector
	sinks      map[string]*Sink
	monitors   map[string]*Monitor
	plugins    map[string]*PluginBinary

	// Monitor references, checked once every block is known.
	refs []reference
}

type reference struct {
	kind string // "detector" or "sink"
	id   string
	rng  hcl.Range
}

func (p *parser) errorf(rng hcl.Range, summary, format string, args ...any) {
	p.diags = append(p.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

func (p *parser) warnf(rng hcl.Range, summary, format string, args ...any) {
	p.diags = append(p.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

func (p *parser) file(f *File, body hcl.Body, dir string) {
	p.singletons = map[string]hcl.Range{}
	p.detectors = map[string]*Detector{}
	p.sinks = map[string]*Sink{}
	p.monitors = map[string]*Monitor{}
	p.plugins = map[string]*PluginBinary{}

	content, diags := body.Content(rootSchema)
	p.diags = append(p.diags, diags...)

	attrs := content.Attributes
	for name, attr := range attrs {
		place(f, name, attr.Expr.Range())
	}
	if s, ok := p.nonEmptyString(attrs["data_dir"]); ok {
		f.DataDir = s
	}
	if s, ok := p.nonEmptyString(attrs["plugin_dir"]); ok {
		f.PluginDir = s
	}
	if s, ok := p.oneOf(attrs["log_level"], LogLevels); ok {
		f.LogLevel = s
	}
	if s, ok := p.oneOf(attrs["log_format"], LogFormats); ok {
		f.LogFormat = s
	}
	if attr := attrs["plugin_timeout"]; attr != nil {
		if s, ok := p.str(attr); ok {
			d, err := time.ParseDuration(s)
			if err != nil || d < MinPluginTimeout || d > MaxPluginTimeout {
				p.errorf(attr.Expr.Range(), "Invalid plugin_timeout",
					"plugin_timeout must be a Go duration from %s to %s such as \"10s\", not %q.", MinPluginTimeout, MaxPluginTimeout, s)
			} else {
				f.PluginTimeout = d
			}
		}
	}
	if d, ok := p.snapshotInterval(attrs["snapshot_interval"]); ok {
		f.SnapshotInterval = d
	}

	for _, b := range content.Blocks {
		switch b.Type {
		// A duplicate block is still checked, into a copy thrown away, so
		// that its own problems are reported too.
		case "listen":
			l, places := &f.Listen, f
			if !p.singleton(b) {
				l, places = &Listen{}, nil
			}
			p.listen(l, b, places)
		case "ingest":
			in, places := &f.Ingest, f
			if !p.singleton(b) {
				in, places = &Ingest{}, nil
			}
			p.ingest(in, b, places)
		case "events":
			ev, places := &f.Events, f
			if !p.singleton(b) {
				ev, places = &Events{}, nil
			}
			p.events(ev, b, places)
		case "telemetry":
			tm, places := &f.Telemetry, f
			if !p.singleton(b) {
				tm, places = &Telemetry{}, nil
			}
			p.telemetry(tm, b, places)
		case "cluster":
			c, places := &Cluster{}, f
			if p.singleton(b) {
				f.Cluster = c
			} else {
				places = nil
			}
			p.cluster(c, b, places, dir)
		case "detector":
			if d := p.detector(b); d != nil {
				f.Detectors = append(f.Detectors, d)
			}
		case "sink":
			if s := p.sink(b); s != nil {
				f.Sinks = append(f.Sinks, s)
			}
		case "monitor":
			if m := p.monitor(b); m != nil {
				f.Monitors = append(f.Monitors, m)
			}
		case "plugin":
			if pb := p.plugin(b); pb != nil {
				f.Binaries = append(f.Binaries, pb)
			}
		}
	}
}

// place records where a setting was written, unless f is nil: the setting
// belongs to a duplicate block, which is thrown away.
func place(f *File, key string, rng hcl.Range) {
	if f == nil {
		return
	}
	if f.Places == nil {
		f.Places = make(map[string]hcl.Range)
	}
	f.Places[key] = rng
}

// placeBlock records where a singleton block and its attributes were.
func placeBlock(f *File, b *hcl.Block, content *hcl.BodyContent) {
	place(f, b.Type, b.DefRange)
	for name, attr := range content.Attributes {
		place(f, b.Type+"."+name, attr.Expr.Range())
	}
}

// singleton reports whether b is the first block of its type, and reports
// an error when it is not.
func (p *parser) singleton(b *hcl.Block) bool {
	if first, dup := p.singletons[b.Type]; dup {
		p.errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", b.Type),
			"Only one %s block is allowed; the first is on line %d.", b.Type, first.Start.Line)
		return false
	}
	p.singletons[b.Type] = b.DefRange
	return true
}

func (p *parser) listen(l *Listen, b *hcl.Block, places *File) {
	content, diags := b.Body.Content(listenSchema)
	p.diags = append(p.diags, diags...)
	placeBlock(places, b, content)
	if s, ok := p.nonEmptyString(content.Attributes["socket"]); ok {
		l.Socket = s
	}
	if attr := content.Attributes["socket_mode"]; attr != nil {
		if s, ok := p.str(attr); ok {
			mode, err := strconv.ParseUint(s, 8, 32)
			switch {
			case err != nil:
				p.errorf(attr.Expr.Range(), "Invalid socket_mode",
					"socket_mode must be an octal permission string such as \"0660\", not %q.", s)
			case mode > 0o777:
				p.errorf(attr.Expr.Range(), "Invalid socket_mode",
					"socket_mode %q has bits beyond permissions; it must be at most \"0777\".", s)
			default:
				l.SocketMode = fileMode(mode)
			}
		}
	}
	if attr := content.Attributes["metrics"]; attr != nil {
		if s, ok := p.str(attr); ok {
			if err := checkHostPort(s); err != nil {
				p.errorf(attr.Expr.Range(), "Invalid metrics address",
					"metrics must be a TCP address host:port such as \"127.0.0.1:9464\", not %q: %s.", s, err)
			} else {
				l.Metrics = s
			}
		}
	}
	if attr := content.Attributes["http"]; attr != nil {
		if s, ok := p.str(attr); ok {
			if err := checkHostPort(s); err != nil {
				p.errorf(attr.Expr.Range(), "Invalid http address",
					"http must be a TCP address host:port such as \"127.0.0.1:9465\", not %q: %s.", s, err)
			} else {
				l.HTTP = s
			}
		}
	}
	if n, ok := p.integer(content.Attributes["max_connections"], 1, MaxConnections); ok {
		l.MaxConnections = int(n)
	}
	if d, ok := p.duration(content.Attributes["idle_timeout"], MinListenTimeout, MaxListenTimeout); ok {
		l.IdleTimeout = d
	}
	if d, ok := p.duration(content.Attributes["body_timeout"], MinListenTimeout, MaxListenTimeout); ok {
		l.BodyTimeout = d
	}
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func (p *parser) ingest(in *Ingest, b *hcl.Block, places *File) {
	content, diags := b.Body.Content(ingestSchema)
	p.diags = append(p.diags, diags...)
	placeBlock(places, b, content)
	if n, ok := p.integer(content.Attributes["max_line_bytes"], 1, math.MaxInt64); ok {
		in.MaxLineBytes = n
	}
	if n, ok := p.integer(content.Attributes["max_document_bytes"], 1, math.MaxInt64); ok {
		in.MaxDocumentBytes = n
	}
	if n, ok := p.integer(content.Attributes["max_values_per_line"], 1, MaxValuesPerLine); ok {
		in.MaxValuesPerLine = int(n)
	}
	if n, ok := p.integer(content.Attributes["max_streams"], 1, MaxStreams); ok {
		in.MaxStreams = int(n)
	}
}

func (p *parser) events(ev *Events, b *hcl.Block, places *File) {
	content, diags := b.Body.Content(eventsSchema)
	p.diags = append(p.diags, diags...)
	placeBlock(places, b, content)
	if n, ok := p.integer(content.Attributes["history"], 1, 10_000_000); ok {
		ev.History = int(n)
	}
	if n, ok := p.integer(content.Attributes["buffer"], 1, 1_000_000); ok {
		ev.Buffer = int(n)
	}
}

func (p *parser) telemetry(tm *Telemetry, b *hcl.Block, places *File) {
	content, diags := b.Body.Content(telemetrySchema)
	p.diags = append(p.diags, diags...)
	placeBlock(places, b, content)
	if n, ok := p.integer(content.Attributes["stream_series"], 0, MaxStreamSeries); ok {
		tm.StreamSeries = int(n)
	}
}

// labels checks a detector's or sink's "<plugin>" "<name>" labels.
func (p *parser) labels(b *hcl.Block) bool {
	ok := true
	if plugin := b.Labels[0]; !pluginNameRe.MatchString(plugin) {
		p.errorf(b.LabelRanges[0], "Invalid plugin name",
			"%q is not a valid plugin name: it names the file driftd-plugin-<name> in plugin_dir, "+
				"so it must be 1 to 64 lowercase letters, digits, \"_\" or \"-\", starting with a letter or digit.", plugin)
		ok = false
	}
	if name := b.Labels[1]; !blockNameRe.MatchString(name) {
		p.errorf(b.LabelRanges[1], fmt.Sprintf("Invalid %s name", b.Type),
			"%q is not a valid %s name: it must be 1 to 64 letters, digits, \"_\" or \"-\".", name, b.Type)
		ok = false
	}
	return ok
}

// configBlock returns the body of the config block among blocks, or an empty
// body placed at def when there is none.
func (p *parser) configBlock(blocks hcl.Blocks, def hcl.Range, owner string) (hcl.Body, hcl.Range) {
	configs := blocks.OfType("config")
	if len(configs) == 0 {
		return emptyBodyAt(def), def
	}
	for _, dup := range configs[1:] {
		p.errorf(dup.DefRange, "Duplicate config block",
			"A %s has at most one config block; the first is on line %d.", owner, configs[0].DefRange.Start.Line)
	}
	return configs[0].Body, configs[0].DefRange
}

func (p *parser) detector(b *hcl.Block) *Detector {
	content, diags := b.Body.Content(detectorSchema)
	p.diags = append(p.diags, diags...)
	d := &Detector{Plugin: b.Labels[0], Name: b.Labels[1], DefRange: b.DefRange}
	d.Body, d.ConfigRange = p.configBlock(content.Blocks, b.DefRange, "detector")
	if attr := content.Attributes["metric"]; attr != nil {
		if s, ok := p.requiredStr(attr); ok {
			if metric.ValidName(s) {
				d.Metric = s
			} else {
				p.errorf(attr.Expr.Range(), "Invalid metric name",
					"%q is not a valid metric name: it must be 1 to 128 letters, digits, \".\", \"_\" or \"-\".", s)
			}
		}
	}
	labelsOK := p.labels(b)
	if first, dup := p.detectors[d.ID()]; dup {
		p.errorf(b.DefRange, "Duplicate detector",
			"The detector %q is already defined on line %d; each detector needs its own \"<plugin>\" \"<name>\" pair.",
			d.ID(), first.DefRange.Start.Line)
		return nil
	}
	// Known even when its labels are bad, so monitors listing it do not add
	// a second error about the same mistake.
	p.detectors[d.ID()] = d
	if !labelsOK {
		return nil
	}
	return d
}

// plugin parses a plugin block: plugin "<name>" { path = "...", sha256 = "..." }.
func (p *parser) plugin(b *hcl.Block) *PluginBinary {
	content, diags := b.Body.Content(pluginSchema)
	p.diags = append(p.diags, diags...)
	pb := &PluginBinary{Name: b.Labels[0], DefRange: b.DefRange}
	ok := true
	if !pluginNameRe.MatchString(pb.Name) {
		p.errorf(b.LabelRanges[0], "Invalid plugin name",
			"%q is not a valid plugin name: it must be 1 to 64 lowercase letters, digits, \"_\" or \"-\", "+
				"starting with a letter or digit.", pb.Name)
		ok = false
	}
	if attr := content.Attributes["path"]; attr != nil {
		s, good := p.str(attr)
		switch {
		case !good:
			ok = false
		case s == "":
			p.errorf(attr.Expr.Range(), "Invalid path",
				"path must name the plugin's binary, relative to the config file's directory or absolute.")
			ok = false
		default:
			pb.Path = s
		}
	} else {
		ok = false // Content reported it
	}
	if attr := content.Attributes["sha256"]; attr != nil {
		s, good := p.str(attr)
		switch {
		case !good:
			ok = false
		case !sha256Re.MatchString(s):
			p.errorf(attr.Expr.Range(), "Invalid sha256",
				"sha256 must be the 64 hexadecimal digits of the binary's SHA-256 (as sha256sum prints them), not %q.", s)
			ok = false
		default:
			pb.SHA256 = strings.ToLower(s)
			pb.SHA256Range = attr.Expr.Range()
		}
	}
	if first, dup := p.plugins[pb.Name]; dup {
		p.errorf(b.DefRange, "Duplicate plugin block",
			"The plugin %q is already given a binary on line %d.", pb.Name, first.DefRange.Start.Line)
		return nil
	}
	p.plugins[pb.Name] = pb
	if !ok {
		return nil
	}
	return pb
}

func (p *parser) sink(b *hcl.Block) *Sink {
	content, diags := b.Body.Content(sinkSchema)
	p.diags = append(p.diags, diags...)
	s := &Sink{Plugin: b.Labels[0], Name: b.Labels[1], DefRange: b.DefRange, Timeout: DefaultSinkTimeout, Retry: DefaultRetry}
	s.Body, s.ConfigRange = p.configBlock(content.Blocks, b.DefRange, "sink")
	if d, ok := p.duration(content.Attributes["timeout"], time.Millisecond, MaxPluginTimeout); ok {
		s.Timeout = d
	}
	p.retry(&s.Retry, content.Blocks)
	labelsOK := p.labels(b)
	if first, dup := p.sinks[s.ID()]; dup {
		p.errorf(b.DefRange, "Duplicate sink",
			"The sink %q is already defined on line %d; each sink needs its own \"<plugin>\" \"<name>\" pair.",
			s.ID(), first.DefRange.Start.Line)
		return nil
	}
	p.sinks[s.ID()] = s
	if !labelsOK {
		return nil
	}
	return s
}

// retry reads a sink's retry block, if it has one.
func (p *parser) retry(r *Retry, blocks hcl.Blocks) {
	var seen *hcl.Block
	for _, b := range blocks {
		if b.Type != "retry" {
			continue
		}
		if seen != nil {
			p.errorf(b.DefRange, "Duplicate retry block",
				"A sink has one retry block; the first is on line %d.", seen.DefRange.Start.Line)
			continue
		}
		seen = b
		content, diags := b.Body.Content(retrySchema)
		p.diags = append(p.diags, diags...)
		attrs := content.Attributes
		if d, ok := p.duration(attrs["initial_backoff"], time.Millisecond, 24*time.Hour); ok {
			r.InitialBackoff = d
		}
		if d, ok := p.duration(attrs["max_backoff"], time.Millisecond, 24*time.Hour); ok {
			r.MaxBackoff = d
		}
		if n, ok := p.integer(attrs["max_attempts"], 0, 1<<31-1); ok {
			r.MaxAttempts = int(n)
		}
		if d, ok := p.duration(attrs["max_age"], 0, 100*365*24*time.Hour); ok {
			r.MaxAge = d
		}
		if r.MaxBackoff < r.InitialBackoff {
			rng := b.DefRange
			if a := attrs["max_backoff"]; a != nil {
				rng = a.Expr.Range()
			}
			p.errorf(rng, "Invalid max_backoff",
				"max_backoff (%s) must not be shorter than initial_backoff (%s).", r.MaxBackoff, r.InitialBackoff)
		}
	}
}

// duration parses a Go duration attribute within [lo, hi]; "0" is allowed
// when lo is 0, and hi = math.MaxInt64 sets no upper bound.
func (p *parser) duration(attr *hcl.Attribute, lo, hi time.Duration) (time.Duration, bool) {
	if attr == nil {
		return 0, false
	}
	s, ok := p.str(attr)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must be a Go duration such as \"30s\" or \"5m\", not %q.", attr.Name, s)
	case (d < lo || d > hi) && hi == math.MaxInt64:
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must be at least %s, not %q.", attr.Name, lo, s)
	case d < lo || d > hi:
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must be from %s to %s, not %q.", attr.Name, lo, hi, s)
	default:
		return d, true
	}
	return 0, false
}

func (p *parser) monitor(b *hcl.Block) *Monitor {
	content, diags := b.Body.Content(monitorSchema)
	p.diags = append(p.diags, diags...)
	m := &Monitor{
		Pattern:     b.Labels[0],
		Versions:    []string{"*"},
		Window:      DefaultWindow,
		Cooldown:    DefaultCooldown,
		ExpireAfter: DefaultExpireAfter,
		DefRange:    b.DefRange,
	}
	attrs := content.Attributes

	patternOK := p.pattern(m.Pattern, b.LabelRanges[0])
	if patternOK {
		if first, dup := p.monitors[m.Pattern]; dup {
			p.errorf(b.LabelRanges[0], "Duplicate monitor",
				"A monitor for %q is already defined on line %d; list all versions, detectors and sinks for it in one block.",
				m.Pattern, first.DefRange.Start.Line)
			patternOK = false
		} else {
			p.monitors[m.Pattern] = m
		}
	}

	if attr := attrs["versions"]; attr != nil {
		if vs, ranges, ok := p.stringList(attr); ok {
			if len(vs) == 0 {
				p.errorf(attr.Expr.Range(), "Invalid versions",
					"versions must list at least one version or glob; leave it out to match every version.")
				ok = false
			}
			for i, v := range vs {
				if !p.glob(v, ranges[i], "version") {
					ok = false
				}
			}
			if ok {
				m.Versions = vs
			}
		}
	}
	if n, ok := p.integer(attrs["window"], 1, MaxWindow); ok {
		m.Window = int(n)
	}
	m.Detectors = p.refList(attrs["detectors"], "detector")
	m.Sinks = p.refList(attrs["sinks"], "sink")
	if attr := attrs["cooldown"]; attr != nil {
		if s, ok := p.str(attr); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				p.errorf(attr.Expr.Range(), "Invalid cooldown",
					"cooldown must be a Go duration such as \"15m\" or \"1h30m\", not %q.", s)
			case d < 0:
				p.errorf(attr.Expr.Range(), "Invalid cooldown",
					"cooldown must not be negative, not %q.", s)
			default:
				m.Cooldown = d
			}
		}
	}
	if attr := attrs["expire_after"]; attr != nil {
		if s, ok := p.str(attr); ok {
			d, err := time.ParseDuration(s)
			switch {
			case s == "off" || s == "0":
				m.ExpireAfter = 0
			case err != nil:
				p.errorf(attr.Expr.Range(), "Invalid expire_after",
					"expire_after must be a Go duration such as \"168h\", or \"off\", not %q.", s)
			case d < MinExpireAfter:
				p.errorf(attr.Expr.Range(), "Invalid expire_after",
					"expire_after must be at least %s, or \"off\", not %q.", MinExpireAfter, s)
			default:
				m.ExpireAfter = d
			}
		}
	}
	if !patternOK {
		return nil
	}
	return m
}

// pattern checks a monitor label: a model name, or a glob over model names.
func (p *parser) pattern(pat string, rng hcl.Range) bool {
	if !isGlob(pat) {
		if !metric.ValidName(pat) {
			p.errorf(rng, "Invalid model pattern",
				"%q is neither a model name (1 to 128 letters, digits, \".\", \"_\" or \"-\") nor a glob such as \"fraud_*\".", pat)
			return false
		}
		return true
	}
	return p.glob(pat, rng, "model")
}

func (p *parser) glob(pat string, rng hcl.Range, what string) bool {
	if pat == "" {
		p.errorf(rng, "Invalid glob pattern", "A %s pattern must not be empty; use \"*\" to match every %s.", what, what)
		return false
	}
	if _, err := path.Match(pat, ""); err != nil {
		p.errorf(rng, "Invalid glob pattern",
			"%q is not a valid %s pattern: %s (see Go's path.Match for the syntax).", pat, what, err)
		return false
	}
	return true
}

// isGlob reports whether pat holds path.Match's special characters.
func isGlob(pat string) bool { return strings.ContainsAny(pat, `*?[\`) }

// refList decodes a list of "<plugin>.<name>" references and records them for
// references, which checks them once every block has been read.
func (p *parser) refList(attr *hcl.Attribute, kind string) []string {
	if attr == nil {
		return nil
	}
	// Elements that are fine are kept even when others are not, so the
	// detectors and sinks they name are not reported unused as well.
	ids, ranges, _ := p.stringList(attr)
	seen := map[string]bool{}
	var out []string
	for i, id := range ids {
		if seen[id] {
			p.errorf(ranges[i], fmt.Sprintf("Duplicate %s reference", kind),
				"The %s %q is listed more than once in %s.", kind, id, attr.Name)
			continue
		}
		seen[id] = true
		out = append(out, id)
		p.refs = append(p.refs, reference{kind: kind, id: id, rng: ranges[i]})
	}
	return out
}

// references checks the monitors' references and warns about detectors and
// sinks no monitor uses.
func (p *parser) references(f *File) {
	var detectorIDs, sinkIDs []string
	for _, d := range f.Detectors {
		detectorIDs = append(detectorIDs, d.ID())
	}
	for _, s := range f.Sinks {
		sinkIDs = append(sinkIDs, s.ID())
	}
	used := map[string]bool{}
	for _, r := range p.refs {
		var known bool
		var candidates []string
		switch r.kind {
		case "detector":
			_, known = p.detectors[r.id]
			candidates = detectorIDs
		case "sink":
			_, known = p.sinks[r.id]
			candidates = sinkIDs
		}
		if known {
			used[r.kind+" "+r.id] = true
			continue
		}
		detail := fmt.Sprintf("No %s %q is defined.", r.kind, r.id)
		if s := Suggest(r.id, candidates); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		} else if !strings.Contains(r.id, ".") {
			detail += fmt.Sprintf(" Refer to a %s as \"<plugin>.<name>\".", r.kind)
		}
		p.errorf(r.rng, fmt.Sprintf("Reference to undefined %s", r.kind), "%s", detail)
	}
	for _, d := range f.Detectors {
		if !used["detector "+d.ID()] {
			p.warnf(d.DefRange, "Unused detector",
				"No monitor lists the detector %q, so it sees no metrics.", d.ID())
		}
	}
	for _, s := range f.Sinks {
		if !used["sink "+s.ID()] {
			p.warnf(s.DefRange, "Unused sink",
				"No monitor lists the sink %q, so it receives no retrain jobs.", s.ID())
		}
	}
}

// IsPluginName reports whether s may name a plugin: the file
// driftd-plugin-<s> in plugin_dir.
func IsPluginName(s string) bool { return pluginNameRe.MatchString(s) }

// Suggest returns the candidate closest to given when it is close enough to
// be a likely typo, or the one whose name part equals given when given lacks
// the plugin part; "" when there is none.
func Suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if _, name, ok := strings.Cut(c, "."); ok && name == given {
			return c
		}
		if d := levenshtein(given, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		ra, rb := a.Subject, b.Subject
		switch {
		case ra == nil && rb == nil:
			return 0
		case ra == nil:
			return -1
		case rb == nil:
			return 1
		}
		if c := strings.Compare(ra.Filename, rb.Filename); c != 0 {
			return c
		}
		return ra.Start.Byte - rb.Start.Byte
	})
	return diags
}

// snapshotInterval parses snapshot_interval: a Go duration, "0" for no
// periodic snapshot.
func (p *parser) snapshotInterval(attr *hcl.Attribute) (time.Duration, bool) {
	if attr == nil {
		return 0, false
	}
	s, ok := p.str(attr)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(attr.Expr.Range(), "Invalid snapshot_interval",
			"snapshot_interval must be a Go duration such as \"30s\" or \"5m\", or \"0\" to write the windows only when driftd stops, not %q.", s)
	case d < 0:
		p.errorf(attr.Expr.Range(), "Invalid snapshot_interval",
			"snapshot_interval must not be negative, not %q; \"0\" writes the windows only when driftd stops.", s)
	case d > 0 && d < MinSnapshotInterval:
		p.errorf(attr.Expr.Range(), "Invalid snapshot_interval",
			"snapshot_interval must be at least %v (or \"0\" for none), not %q: each snapshot writes every window.", MinSnapshotInterval, s)
	default:
		return d, true
	}
	return 0, false
}
