// Package fleet runs driftd on many hosts as one: every host's accepted
// metrics go through NATS JetStream to the one host that owns their model
// version's partition, which keeps that version's windows and detectors,
// raises its drifts once and files one retrain job per drift.
//
// The parts, each in a package of its own:
//   - wire: partitions, subjects and the binary record of a metric;
//   - spool and forward: the local disk buffer lines are acknowledged from,
//     and the forwarder that sends them to their partition's subject in order;
//   - lease: membership and partition ownership through leases in a KV bucket;
//   - workq: the retrain job queue every host's sinks deliver from.
//
// This package connects to NATS, creates the streams and buckets, and holds
// the owner of partitions: it loads a partition's checkpoint, consumes its
// lines into the local agent, checkpoints it, and publishes its events.
package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftd/driftd/core/fleet/wire"
)

// Options are how a host joins the fleet.
type Options struct {
	Servers     []string
	Name        string // prefix of every stream, bucket and subject
	Instance    string // this host, unique in the fleet
	Partitions  int
	Replicas    int
	Credentials string // a NATS credentials file, or ""
	TLS         *TLS
	Log         hclog.Logger
}

// TLS names the files of a TLS connection to NATS.
type TLS struct {
	CA, Cert, Key string
}

// MinServerVersion is the oldest NATS server fleet mode runs on: 2.10
// brought multi-subject consumer filters and the KV and stream features
// the leases and checkpoints use.
const MinServerVersion = "2.10.0"

// ErrIncompatible marks why a host cannot join although NATS answered: a
// server too old or without JetStream, credentials or TLS it refuses, a
// lines stream of another partition count. Waiting does not mend it; the
// servers or the config must change. Other errors of Connect and Ensure
// (no server reachable, JetStream without a leader yet) may pass by
// themselves.
var ErrIncompatible = errors.New("NATS cannot run this fleet as configured")

// incompatible marks err with ErrIncompatible; its message stays err's.
func incompatible(err error) error { return incompatibleError{err} }

type incompatibleError struct{ err error }

func (e incompatibleError) Error() string   { return e.err.Error() }
func (e incompatibleError) Unwrap() []error { return []error{e.err, ErrIncompatible} }

// refusedConnect reports whether a connection failed for a reason of the
// server's or of the host's settings (credentials, TLS) rather than of the
// network.
func refusedConnect(err error) bool {
	var (
		pathErr   *fs.PathError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
	)
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted) ||
		errors.Is(err, nats.ErrNkeysNotSupported) || errors.As(err, &pathErr) ||
		errors.As(err, &authority) || errors.As(err, &invalid) || errors.As(err, &hostname)
}

// dialFunc is a nats.CustomDialer of a function.
type dialFunc func(network, address string) (net.Conn, error)

func (f dialFunc) Dial(network, address string) (net.Conn, error) { return f(network, address) }

// Connect connects to the NATS servers and checks that the one reached is
// recent enough and has JetStream. The connection reconnects by itself
// until it is closed; its state changes are logged. Its dials end with
// ctx, which must last as long as the connection is used. An error wraps
// ErrIncompatible when the servers answered and cannot run the fleet.
func Connect(ctx context.Context, o Options) (*nats.Conn, jetstream.JetStream, error) {
	log := o.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	opts := []nats.Option{
		nats.Name("driftd " + o.Instance),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.Timeout(5 * time.Second),
		nats.RetryOnFailedConnect(false),
		// A dial ends with ctx: a host that stops while it joins does
		// not wait for servers that do not answer.
		nats.SetCustomDialer(dialFunc(func(network, address string) (net.Conn, error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			return d.DialContext(ctx, network, address)
		})),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				log.Warn("disconnected from NATS; lines are spooled until it is back", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS", "error", err)
		}),
	}
	if o.Credentials != "" {
		opts = append(opts, nats.UserCredentials(o.Credentials))
	}
	if t := o.TLS; t != nil {
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	nc, err := nats.Connect(strings.Join(o.Servers, ","), opts...)
	if err != nil {
		err = fmt.Errorf("connect to NATS at %s: %w", strings.Join(o.Servers, ", "), err)
		if refusedConnect(err) {
			err = incompatible(err)
		}
		return nil, nil, err
	}
	if err := checkVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return nil, nil, incompatible(fmt.Errorf("NATS server %s (%s): %w", nc.ConnectedServerName(), nc.ConnectedUrlRedacted(), err))
	}
	// An acknowledgement lost with a server (the publish went out just
	// before it died) fails its future after a while, so that the event
	// is sent again rather than waited for for ever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		url := nc.ConnectedUrlRedacted()
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, nil, incompatible(fmt.Errorf("NATS server %s has no JetStream: fleet mode keeps its lines, leases and jobs in JetStream; start the servers with -js (or a jetstream block)", nc.ConnectedServerName()))
		}
		return nil, nil, fmt.Errorf("JetStream at %s: %w", url, err)
	}
	return nc, js, nil
}

// publishAckTimeout is how long an asynchronous publish waits for
// JetStream's acknowledgement before it counts as failed.
const publishAckTimeout = 5 * time.Second

// checkVersion refuses a server older than MinServerVersion.
func checkVersion(v string) error {
	if !versionAtLeast(v, MinServerVersion) {
		return fmt.Errorf("version %s is too old: fleet mode needs NATS server %s or newer (subject-filtered consumers, per-key KV revisions)", v, MinServerVersion)
	}
	return nil
}

// versionAtLeast compares dotted versions such as "2.10.4" or
// "2.11.0-RC.1" by their first three numbers.
func versionAtLeast(v, min string) bool {
	a, b := versionParts(v), versionParts(min)
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func versionParts(v string) [3]int {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out
}

// Names of what the fleet keeps in JetStream.
func eventsStream(name string) string     { return name + "_events" }
func partitionsBucket(name string) string { return name + "_partitions" }
func checkpointsBucket(name string) string {
	return name + "_checkpoints"
}

// EventsSubject is the subject of an event of type typ about a model
// version; events of no model version go under "_". A name's dots, which
// would split it into several subject tokens, are written as "_2e" and its
// "_" as "_5f", so every name is one token and two names never meet.
func EventsSubject(name, typ, model, version string) string {
	return name + ".events." + typ + "." + subjectToken(model) + "." + subjectToken(version)
}

func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	if !strings.ContainsAny(s, "._") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '.':
			b.WriteString("_2e")
		case '_':
			b.WriteString("_5f")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// LinesRetention is how long the lines stream keeps a line: a partition's
// new owner replays its lines from the last checkpoint, which is seconds
// old, so a day is ample.
const LinesRetention = 24 * time.Hour

// EventsRetention is how long the events stream keeps events.
const EventsRetention = 24 * time.Hour

// Duplicates is the window in which JetStream drops a message whose
// Nats-Msg-Id it has seen: a line resent after a lost ack, an event raised
// again by a partition's new owner.
const Duplicates = 10 * time.Minute

// Resources are the streams and buckets of a fleet.
type Resources struct {
	Lines       jetstream.Stream
	Events      jetstream.Stream
	Partitions  jetstream.KeyValue
	Checkpoints jetstream.ObjectStore
}

// Ensure creates the fleet's streams and buckets that do not exist yet.
// One that exists with other settings is left as it is, but for a lines
// stream of another partition count, which is refused: a model version's
// partition would not be the same on every host.
func Ensure(ctx context.Context, js jetstream.JetStream, o Options) (*Resources, error) {
	var r Resources
	var err error
	storage := jetstream.FileStorage
	linesCfg := jetstream.StreamConfig{
		Name: wire.LinesStream(o.Name), Subjects: []string{o.Name + ".lines.*"},
		Storage: storage, Replicas: o.Replicas, MaxAge: LinesRetention, Duplicates: Duplicates,
		Metadata:    map[string]string{"driftd_partitions": strconv.Itoa(o.Partitions)},
		Description: "driftd: accepted metric records by partition",
	}
	if r.Lines, err = ensureStream(ctx, js, linesCfg); err != nil {
		return nil, err
	}
	if p := r.Lines.CachedInfo().Config.Metadata["driftd_partitions"]; p != "" && p != strconv.Itoa(o.Partitions) {
		return nil, incompatible(fmt.Errorf("stream %s was made for %s partitions, and this config says %d: every host must use the partitions the streams were made with (or remove the fleet's streams to start over)",
			linesCfg.Name, p, o.Partitions))
	}
	eventsCfg := jetstream.StreamConfig{
		Name: eventsStream(o.Name), Subjects: []string{o.Name + ".events.>"},
		Storage: storage, Replicas: o.Replicas, MaxAge: EventsRetention, Duplicates: Duplicates,
		Description: "driftd: the fleet's events",
	}
	if r.Events, err = ensureStream(ctx, js, eventsCfg); err != nil {
		return nil, err
	}
	if r.Partitions, err = ensureKV(ctx, js, jetstream.KeyValueConfig{Bucket: partitionsBucket(o.Name), Storage: storage,
		Replicas: o.Replicas, Description: "driftd: each partition's checkpoint and its fence"}); err != nil {
		return nil, err
	}
	r.Checkpoints, err = js.ObjectStore(ctx, checkpointsBucket(o.Name))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		r.Checkpoints, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: checkpointsBucket(o.Name),
			Storage: storage, Replicas: o.Replicas, Description: "driftd: partition checkpoints"})
	}
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", checkpointsBucket(o.Name), err)
	}
	return &r, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another host made it meanwhile
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
