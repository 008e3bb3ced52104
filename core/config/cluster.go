package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Defaults and limits of the cluster block.
const (
	DefaultClusterName        = "driftd"
	DefaultPartitions         = 64
	DefaultReplicas           = 3
	DefaultLeaseTTL           = 2 * time.Second
	DefaultCheckpointInterval = 5 * time.Second
	DefaultSpoolMaxBytes      = 1 << 30 // 1 GiB

	// MaxClusterName bounds name, which prefixes every stream, bucket and
	// subject driftd creates.
	MaxClusterName = 32
	// MaxInstance bounds instance.
	MaxInstance = 64
	// MaxPartitions and MaxReplicas bound partitions and replicas.
	MaxPartitions = 1024
	MaxReplicas   = 5
	// MinLeaseTTL and MaxLeaseTTL bound lease_ttl.
	MinLeaseTTL = 500 * time.Millisecond
	MaxLeaseTTL = time.Minute
	// MinCheckpointInterval is the shortest checkpoint_interval.
	MinCheckpointInterval = 100 * time.Millisecond
	// MinSpoolMaxBytes is the smallest spool.max_bytes: 1 MiB.
	MinSpoolMaxBytes = 1 << 20
)

// Cluster is the cluster block: the NATS servers the hosts of a fleet share,
// and how the fleet lays out its work on them. File.Cluster is nil when the
// file has no cluster block: the daemon then runs on its own host alone.
//
// A running daemon cannot change its cluster block: the connection is made,
// and the streams and partitions are laid out, once at the start.
type Cluster struct {
	// Servers are the NATS servers to connect to, as written:
	// nats://host[:port], tls://host[:port] or host:port.
	Servers []string
	// Name prefixes every stream, bucket and subject driftd creates.
	Name string
	// Instance names this host in the fleet: unique per host. It
	// defaults to the host name, cleaned to letters, digits, "_" and "-".
	Instance string
	// Partitions is how many partitions the model versions are hashed
	// to; it is fixed when the streams are created.
	Partitions int
	// Replicas is the JetStream replica count of what driftd creates.
	Replicas int
	// LeaseTTL is how long an instance that stopped renewing its leases
	// (dead or cut off) keeps its partitions.
	LeaseTTL time.Duration
	// CheckpointInterval is how often the owner of a partition
	// checkpoints it.
	CheckpointInterval time.Duration
	// Credentials is a NATS credentials file, or "". Load resolves a
	// relative path against the config file's directory.
	Credentials string
	// TLS is the tls block, or nil when there is none.
	TLS   *ClusterTLS
	Spool Spool

	DefRange hcl.Range
}

// ClusterTLS is the cluster's tls block: a CA to verify the servers with,
// and a client certificate and key, all PEM files. Each is "" when not
// set; Cert and Key are both set or both "". Load resolves relative paths
// against the config file's directory.
type ClusterTLS struct {
	CA   string
	Cert string
	Key  string
}

// Spool is the cluster's spool block: the local disk buffer, under
// data_dir, of accepted lines not yet acknowledged by NATS.
type Spool struct {
	// MaxBytes is the most the spool holds; when it is full, the socket
	// refuses metrics with 503 and Retry-After.
	MaxBytes int64
}

var clusterSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "servers", Required: true},
		{Name: "name"},
		{Name: "instance"},
		{Name: "partitions"},
		{Name: "replicas"},
		{Name: "lease_ttl"},
		{Name: "checkpoint_interval"},
		{Name: "credentials"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "tls"},
		{Type: "spool"},
	},
}

var clusterTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "ca"},
		{Name: "cert"},
		{Name: "key"},
	},
}

var spoolSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "max_bytes"},
	},
}

var clusterNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// cluster parses a cluster block into c. places is nil for a duplicate
// block, which is checked and thrown away. dir is the config file's
// directory, which relative paths are relative to.
func (p *parser) cluster(c *Cluster, b *hcl.Block, places *File, dir string) {
	content, diags := b.Body.Content(clusterSchema)
	p.diags = append(p.diags, diags...)
	placeBlock(places, b, content)
	*c = Cluster{
		Name:               DefaultClusterName,
		Partitions:         DefaultPartitions,
		Replicas:           DefaultReplicas,
		LeaseTTL:           DefaultLeaseTTL,
		CheckpointInterval: DefaultCheckpointInterval,
		Spool:              Spool{MaxBytes: DefaultSpoolMaxBytes},
		DefRange:           b.DefRange,
	}
	attrs := content.Attributes

	if attr := attrs["servers"]; attr != nil {
		c.Servers = p.servers(attr)
	}
	if attr := attrs["name"]; attr != nil {
		if s, ok := p.str(attr); ok {
			if len(s) > MaxClusterName || !clusterNameRe.MatchString(s) {
				p.errorf(attr.Expr.Range(), "Invalid name",
					"name must be 1 to %d letters, digits, \"_\" or \"-\" (it prefixes every stream, bucket and subject driftd creates), not %q.",
					MaxClusterName, s)
			} else {
				c.Name = s
			}
		}
	}
	if attr := attrs["instance"]; attr != nil {
		if s, ok := p.str(attr); ok {
			if len(s) > MaxInstance || !clusterNameRe.MatchString(s) {
				p.errorf(attr.Expr.Range(), "Invalid instance",
					"instance must be 1 to %d letters, digits, \"_\" or \"-\", and unique to this host; leave it out for the host name, not %q.",
					MaxInstance, s)
			} else {
				c.Instance = s
			}
		}
	} else {
		host, err := os.Hostname()
		if err == nil && host == "" {
			err = fmt.Errorf("the host name is empty")
		}
		if err != nil {
			p.errorf(b.DefRange, "Cannot name this instance",
				"instance defaults to the host name, which is unknown: %s. Set instance to a name unique to this host.", err)
		} else {
			c.Instance = InstanceName(host)
		}
	}
	if n, ok := p.integer(attrs["partitions"], 1, MaxPartitions); ok {
		c.Partitions = int(n)
	}
	if n, ok := p.integer(attrs["replicas"], 1, MaxReplicas); ok {
		c.Replicas = int(n)
	}
	if d, ok := p.duration(attrs["lease_ttl"], MinLeaseTTL, MaxLeaseTTL); ok {
		c.LeaseTTL = d
	}
	if d, ok := p.duration(attrs["checkpoint_interval"], MinCheckpointInterval, math.MaxInt64); ok {
		c.CheckpointInterval = d
	}
	if attr := attrs["credentials"]; attr != nil {
		c.Credentials, _ = p.readablePath(attr, dir, "a NATS credentials file (.creds)")
	}

	var tlsBlock, spoolBlock *hcl.Block
	for _, nb := range content.Blocks {
		// A duplicate block is still checked, into a copy thrown away, so
		// that its own problems are reported too.
		first := &tlsBlock
		if nb.Type == "spool" {
			first = &spoolBlock
		}
		dup, nested := *first != nil, places
		if dup {
			p.errorf(nb.DefRange, fmt.Sprintf("Duplicate %s block", nb.Type),
				"A cluster block has one %s block; the first is on line %d.", nb.Type, (*first).DefRange.Start.Line)
			nested = nil
		} else {
			*first = nb
		}
		place(nested, "cluster."+nb.Type, nb.DefRange)
		switch nb.Type {
		case "tls":
			if t := p.clusterTLS(nb, nested, dir); !dup {
				c.TLS = t
			}
		case "spool":
			sp := &c.Spool
			if dup {
				sp = &Spool{}
			}
			p.spool(sp, nb, nested)
		}
	}
}

// servers decodes and checks the servers list.
func (p *parser) servers(attr *hcl.Attribute) []string {
	n := len(p.diags)
	list, ranges, ok := p.stringList(attr)
	if !ok && len(p.diags) == n {
		p.errorf(attr.Expr.Range(), "Missing required argument",
			"The argument %q is required and must not be null.", attr.Name)
	}
	if ok && len(list) == 0 {
		p.errorf(attr.Expr.Range(), "Invalid servers",
			"servers must list at least one NATS server, such as [\"nats://10.0.0.5:4222\"].")
		return nil
	}
	seen := map[string]bool{}
	for i, s := range list {
		if err := checkServer(s); err != nil {
			p.errorf(ranges[i], "Invalid server URL",
				"A server must be nats://host:port, tls://host:port or host:port (the port of nats:// and tls:// defaults to 4222), not %q: %s.", s, err)
			ok = false
			continue
		}
		if seen[s] {
			p.errorf(ranges[i], "Duplicate server", "The server %q is listed more than once in servers.", s)
			ok = false
			continue
		}
		seen[s] = true
	}
	if !ok {
		return nil
	}
	return list
}

// checkServer checks one entry of servers.
func checkServer(s string) error {
	if !strings.Contains(s, "://") {
		return checkHostPort(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "nats" && u.Scheme != "tls":
		return fmt.Errorf("the scheme %q is neither nats nor tls", u.Scheme)
	case u.Hostname() == "":
		return fmt.Errorf("it names no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("a server URL has no path, query or fragment")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("the port is empty")
	}
	return nil
}

// readablePath checks that attr names a regular file this process can open
// for reading, relative to dir unless absolute, and returns the path as
// written.
func (p *parser) readablePath(attr *hcl.Attribute, dir, what string) (string, bool) {
	s, ok := p.str(attr)
	if !ok {
		return "", false
	}
	if s == "" {
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must name %s, relative to the config file's directory or absolute; leave it out for none.", attr.Name, what)
		return "", false
	}
	if err := checkReadable(resolve(dir, s)); err != nil {
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must name %s, relative to the config file's directory or absolute; %s.", attr.Name, what, err)
		return "", false
	}
	return s, true
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, pathErr(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

func (p *parser) clusterTLS(b *hcl.Block, places *File, dir string) *ClusterTLS {
	content, diags := b.Body.Content(clusterTLSSchema)
	p.diags = append(p.diags, diags...)
	t := &ClusterTLS{}
	attrs := content.Attributes
	for _, name := range []string{"ca", "cert", "key"} {
		if attr := attrs[name]; attr != nil {
			place(places, "cluster.tls."+name, attr.Expr.Range())
		}
	}
	if attr := attrs["ca"]; attr != nil {
		t.CA, _ = p.readablePath(attr, dir, "a PEM file of the CA certificates that sign the servers' certificates")
	}
	if attr := attrs["cert"]; attr != nil {
		t.Cert, _ = p.readablePath(attr, dir, "the PEM file of this host's client certificate")
	}
	if attr := attrs["key"]; attr != nil {
		t.Key, _ = p.readablePath(attr, dir, "the PEM file of the client certificate's private key")
	}
	cert, key := attrs["cert"], attrs["key"]
	switch {
	case cert != nil && key == nil:
		p.errorf(cert.Expr.Range(), "Missing key",
			"A client certificate needs its private key: set cert and key together, or neither.")
	case key != nil && cert == nil:
		p.errorf(key.Expr.Range(), "Missing cert",
			"A private key needs its client certificate: set cert and key together, or neither.")
	}
	return t
}

func (p *parser) spool(s *Spool, b *hcl.Block, places *File) {
	content, diags := b.Body.Content(spoolSchema)
	p.diags = append(p.diags, diags...)
	attr := content.Attributes["max_bytes"]
	if attr == nil {
		return
	}
	place(places, "cluster.spool.max_bytes", attr.Expr.Range())
	if n, ok := p.size(attr, MinSpoolMaxBytes); ok {
		s.MaxBytes = n
	}
}

// size decodes a byte size of at least lo: a whole number of bytes, or a
// string such as "512MiB", "1GiB" or "100MB".
func (p *parser) size(attr *hcl.Attribute, lo int64) (int64, bool) {
	v, ok := p.value(attr, cty.DynamicPseudoType)
	if !ok {
		return 0, false
	}
	var n int64
	var text string
	switch v.Type() {
	case cty.Number:
		bf := v.AsBigFloat()
		i, acc := bf.Int64()
		text = bf.Text('g', -1)
		if !bf.IsInt() || acc != big.Exact {
			ok = false
		} else {
			text = strconv.FormatInt(i, 10)
		}
		n = i
	case cty.String:
		text = strconv.Quote(v.AsString())
		var err error
		n, err = ParseSize(v.AsString())
		ok = err == nil
	default:
		p.diags = append(p.diags, typeError(attr, fmt.Errorf("a size string such as \"1GiB\" or a number of bytes is required")))
		return 0, false
	}
	if !ok || n < lo {
		p.errorf(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s must be a size such as \"512MiB\", \"1GiB\" or \"100MB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), "+
				"or a whole number of bytes, of at least %s, not %s.", attr.Name, FormatSize(lo), text)
		return 0, false
	}
	return n, true
}

var sizeUnits = map[string]int64{
	"b":  1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

var sizeRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// ParseSize parses a byte size: a number, optionally with a decimal
// fraction, and a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB,
// GiB, TiB (powers of 1024), in any case; a whole number without a unit
// counts bytes. A fraction of a byte is dropped.
func ParseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size such as \"1GiB\"", s)
	}
	num, unit := m[1], strings.ToLower(m[2])
	mult := int64(1)
	if unit != "" {
		var known bool
		if mult, known = sizeUnits[unit]; !known {
			return 0, fmt.Errorf("%q is not a size unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB", m[2])
		}
	} else if strings.Contains(num, ".") {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	f, _, err := big.ParseFloat(num, 10, 128, big.ToZero)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	f.Mul(f, new(big.Float).SetInt64(mult))
	if f.Cmp(new(big.Float).SetInt64(math.MaxInt64)) > 0 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	n, _ := f.Int64()
	return n, nil
}

// FormatSize writes n bytes in the largest binary unit that divides it, as
// ParseSize reads it: "1GiB", "512MiB", "1000B".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// InstanceName turns a host name into an instance name: each character
// other than a letter, digit, "_" or "-" becomes "-", and a result longer
// than MaxInstance keeps its head and ends in a hash of the whole host
// name, so that long names stay distinct.
func InstanceName(host string) string {
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) <= MaxInstance {
		return string(b)
	}
	sum := sha256.Sum256([]byte(host))
	return string(b[:MaxInstance-9]) + "-" + hex.EncodeToString(sum[:4])
}

// Changes returns the keys ("cluster.partitions", ...) of the settings of
// c that next sets otherwise, in the order of the block's schema; nil
// when both are the same. Where the blocks are written plays no part.
// Either may be nil (no cluster block): then the answer is ["cluster"]
// unless both are.
func (c *Cluster) Changes(next *Cluster) []string {
	switch {
	case c == nil && next == nil:
		return nil
	case c == nil || next == nil:
		return []string{"cluster"}
	}
	var out []string
	diff := func(key string, changed bool) {
		if changed {
			out = append(out, "cluster."+key)
		}
	}
	diff("servers", !slices.Equal(c.Servers, next.Servers))
	diff("name", c.Name != next.Name)
	diff("instance", c.Instance != next.Instance)
	diff("partitions", c.Partitions != next.Partitions)
	diff("replicas", c.Replicas != next.Replicas)
	diff("lease_ttl", c.LeaseTTL != next.LeaseTTL)
	diff("checkpoint_interval", c.CheckpointInterval != next.CheckpointInterval)
	diff("credentials", c.Credentials != next.Credentials)
	diff("tls", (c.TLS == nil) != (next.TLS == nil) || c.TLS != nil && *c.TLS != *next.TLS)
	diff("spool", c.Spool != next.Spool)
	return out
}

// resolvePaths resolves the cluster's relative paths against dir, as Load
// does the file's other paths.
func (c *Cluster) resolvePaths(dir string) {
	if c.Credentials != "" {
		c.Credentials = resolve(dir, c.Credentials)
	}
	if t := c.TLS; t != nil {
		for _, p := range []*string{&t.CA, &t.Cert, &t.Key} {
			if *p != "" {
				*p = resolve(dir, *p)
			}
		}
	}
}
