package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
)

// Remote is the daemon's handle on a plugin reached over gRPC. Its info and
// schema are read once, when the connection is made.
type Remote struct {
	c      *client
	info   Info
	schema Schema
}

// Info returns the plugin's info.
func (r *Remote) Info() Info { return r.info }

// Schema returns the schema of the plugin's config block.
func (r *Remote) Schema() Schema { return r.schema }

// Configure sends the config; the plugin applies the schema's defaults. The
// problems the plugin finds come back as *ConfigError values, joined.
func (r *Remote) Configure(ctx context.Context, cfg Config) error {
	return r.c.configure(ctx, cfg)
}

// Update feeds batches to a detector plugin.
func (r *Remote) Update(ctx context.Context, batches []Batch) ([]Signal, error) {
	return r.c.update(ctx, batches, nil)
}

// UpdateByID is Update with a number for each batch's stream: ids[i] names
// batches[i].Stream, is the same at every call, and is small (streams
// numbered in the order they come, say). With it the Remote finds the id it
// sends a stream by without hashing the stream's key. A number that names
// another stream than before costs only that lookup.
func (r *Remote) UpdateByID(ctx context.Context, batches []Batch, ids []uint32) ([]Signal, error) {
	if len(ids) != len(batches) {
		return nil, fmt.Errorf("update: %d ids for %d batches: %w", len(ids), len(batches), ErrBadRequest)
	}
	return r.c.update(ctx, batches, ids)
}

// Reset makes a detector plugin forget a stream.
func (r *Remote) Reset(ctx context.Context, stream string) error {
	return r.c.reset(ctx, stream)
}

// Deliver hands a job to a sink plugin. A failure the sink reports is a
// *DeliveryError; a plugin that is gone fails with ErrPluginUnavailable, one
// that does not answer in time with context.DeadlineExceeded.
func (r *Remote) Deliver(ctx context.Context, job Job) error {
	return r.c.deliver(ctx, job)
}

// Ping checks that the plugin answers, with a call as cheap as there is (its
// info). A plugin that is gone fails with ErrPluginUnavailable, one that does
// not answer before ctx's deadline with context.DeadlineExceeded.
func (r *Remote) Ping(ctx context.Context) error {
	_, err := r.c.info(ctx)
	return err
}

func dialRemote(ctx context.Context, pc *plugin.Client) (*Remote, error) {
	proto, err := pc.Client()
	if err != nil {
		return nil, err
	}
	raw, err := proto.Dispense(pluginName)
	if err != nil {
		return nil, err
	}
	c, ok := raw.(*client)
	if !ok {
		return nil, fmt.Errorf("unexpected plugin client %T", raw)
	}
	r := &Remote{c: c}
	if r.info, err = c.hello(ctx); err != nil {
		return nil, err
	}
	if r.schema, err = c.schema(ctx); err != nil {
		return nil, err
	}
	if err := r.schema.Validate(); err != nil {
		return nil, fmt.Errorf("plugin declares an invalid schema: %w", err)
	}
	return r, nil
}

// ProcessConfig says how to start a plugin binary.
type ProcessConfig struct {
	// Path of the plugin binary.
	Path string
	// Logger receives the plugin's own log lines, under its name.
	Logger hclog.Logger
	// StartTimeout bounds the handshake; 10s when zero.
	StartTimeout time.Duration
	// SHA256, when set, is the hex sha256 the binary must have: it is
	// checked right before the binary runs, and a mismatch is a
	// *ChecksumError.
	SHA256 string
	// SocketDir is where the process gets its private directory (mode 0700)
	// for its Unix socket, removed when the process is killed; the system's
	// temp dir when empty, or when a socket path in SocketDir would be too
	// long for a Unix socket.
	SocketDir string
}

// ErrChecksum means a plugin binary does not have the sha256 the config
// gives for it.
var ErrChecksum = errors.New("plugin binary checksum mismatch")

// ChecksumError is a plugin binary whose sha256 is not the expected one.
type ChecksumError struct {
	Path     string
	Expected string
	Actual   string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s has sha256 %s, expected %s", e.Path, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrChecksum) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// FileSHA256 returns the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkSHA256 checks the binary at path against want, a hex sha256.
func checkSHA256(path, want string) error {
	got, err := FileSHA256(path)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, want) {
		return &ChecksumError{Path: path, Expected: strings.ToLower(want), Actual: got}
	}
	return nil
}

// maxSocketDir bounds the length of a private socket directory's path, so
// that the socket go-plugin makes in it ("plugin" and up to ten digits)
// stays within sun_path's 108 bytes.
const maxSocketDir = 90

// socketDir makes a process's private socket directory, mode 0700, in
// parent or, when parent is empty or too deep, in the temp dir.
func socketDir(parent, name string) (string, error) {
	if parent == "" || len(parent)+len(name)+12 > maxSocketDir {
		parent = ""
	} else if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, name+"-")
}

// Process is a running plugin binary and its gRPC connection.
type Process struct {
	pc         *plugin.Client
	remote     *Remote
	pid        int
	stop       func() // set for in-process plugins
	reattached bool   // started by hand in debug mode, see ReattachEnv
	sockDir    string // the private socket directory, removed by Kill
	group      *group // the process group; nil for a plugin not started here
	log        hclog.Logger
}

// StartProcess runs a plugin binary, performs the handshake and reads the
// plugin's info and schema, within cfg.StartTimeout; when ctx ends first,
// the process is killed and the start fails at once. The process leads a
// process group of its own, killed whole when the plugin exits or is
// killed. It gets SIGKILL when the daemon's thread that started it dies, so
// a plugin never outlives a killed daemon; what its children left is for
// KillStrays.
//
// When $DRIFTD_PLUGIN_REATTACH names the plugin (the part of the file name
// after "driftd-plugin-"), StartProcess attaches to that plugin, started by
// hand in debug mode, instead of running the binary.
func StartProcess(ctx context.Context, cfg ProcessConfig) (*Process, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	name := strings.TrimPrefix(filepath.Base(cfg.Path), "driftd-plugin-")
	rc, err := reattachFor(os.Getenv(ReattachEnv), name)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	if rc != nil {
		return attach(ctx, rc, logger)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if cfg.SHA256 != "" {
		if err := checkSHA256(cfg.Path, cfg.SHA256); err != nil {
			return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
		}
	}
	dir, err := socketDir(cfg.SocketDir, name)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: socket directory: %w", cfg.Path, err)
	}
	// Exec'd directly, no shell, in a process group of its own (see group);
	// its socket in a directory only the daemon's user can enter. The host
	// environment comes first so that the socket directory is the one that
	// counts; go-plugin's own is not used.
	env := []string{plugin.EnvUnixSocketDir + "=" + dir}
	if cfg.SocketDir != "" {
		if root, err := filepath.Abs(cfg.SocketDir); err == nil {
			env = append(env, SocketsEnv+"="+root)
		}
	}
	l := &launch{ctx: ctx}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(nil)},
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, tmp string) (runner.Runner, error) {
			os.Remove(tmp)
			cmd := exec.Command(cfg.Path)
			cmd.Env = append(append(os.Environ(), spec.Env...), env...)
			cmd.Stdin = spec.Stdin
			return l.group(cmd)
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		StartTimeout:     timeout,
		SyncStdout:       logWriter{logger, "stdout"},
		SyncStderr:       logWriter{logger, "stderr"},
		GRPCDialOptions:  dialOptions(),
	})
	dctx, cancel := context.WithTimeout(ctx, timeout) // info and schema, after the handshake
	defer cancel()
	// The handshake does not watch ctx: its end kills the process, which
	// ends the handshake.
	stop := context.AfterFunc(ctx, l.kill)
	p, err := connect(dctx, pc)
	if !stop() && err == nil { // killed as it connected
		p.Kill()
		p, err = nil, ctx.Err()
	}
	if err != nil {
		os.RemoveAll(dir)
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	p.sockDir, p.group, p.log, p.pid = dir, l.g, logger, l.g.pid
	return p, nil
}

// launch is the process group of a plugin being started, for a cancelled
// start to kill.
type launch struct {
	ctx  context.Context
	mu   sync.Mutex
	g    *group
	dead bool
}

func (l *launch) group(cmd *exec.Cmd) (*group, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.ctx.Err() != nil {
		return nil, fmt.Errorf("plugin not started: %w", context.Cause(l.ctx))
	}
	l.g = newGroup(cmd)
	return l.g, nil
}

func (l *launch) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	if l.g != nil {
		l.g.kill()
	}
}

func connect(ctx context.Context, pc *plugin.Client) (*Process, error) {
	if _, err := pc.Start(); err != nil {
		pc.Kill()
		return nil, translateStartError(err)
	}
	r, err := dialRemote(ctx, pc)
	if err != nil {
		pc.Kill()
		return nil, err
	}
	p := &Process{pc: pc, remote: r, log: hclog.NewNullLogger()}
	if rc := pc.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	return p, nil
}

// Remote returns the process's gRPC handle.
func (p *Process) Remote() *Remote { return p.remote }

// Pid returns the process id.
func (p *Process) Pid() int { return p.pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool { return p.pc.Exited() }

// Kill asks the plugin to exit, waits up to two seconds, then kills its
// process group. It returns within killWait plus twice pipeDrain (5 s),
// whatever the plugin does: a plugin that does not answer go-plugin's
// request to exit (stopped, or its connection stuck) has its group killed
// by the daemon after killWait. A plugin reattached in debug mode is asked to exit and
// not waited for.
func (p *Process) Kill() {
	if p.reattached {
		// go-plugin leaves a plugin in test mode alone; its controller's
		// Shutdown ends the debug session.
		if c, err := p.pc.Client(); err == nil {
			_ = c.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pc.Kill()
	}()
	select {
	case <-done:
	case <-time.After(killWait):
		if p.group != nil {
			p.group.kill()
		}
		select {
		case <-done:
		case <-time.After(2 * pipeDrain):
			p.log.Warn("plugin process did not end; leaving it", "pid", p.pid)
		}
	}
	if p.stop != nil {
		p.stop()
	}
	if p.sockDir != "" {
		os.RemoveAll(p.sockDir)
	}
}

// SocketDir returns the process's private socket directory; "" for a
// plugin that was not started by StartProcess.
func (p *Process) SocketDir() string { return p.sockDir }

// ServeInProcess serves impl inside this process, over a real go-plugin gRPC
// connection on a Unix socket, and connects to it as the daemon would. It is
// meant for tests (see sdktest); Kill stops the server.
func ServeInProcess(ctx context.Context, impl Plugin) (*Process, error) {
	if err := checkKind(impl); err != nil {
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(impl)},
		GRPCServer:       newGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test:             &plugin.ServeTestConfig{Context: serveCtx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("serve in process: no reattach config after 10s")
	}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginSet(nil),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		GRPCDialOptions:  dialOptions(),
	})
	p, err := connect(ctx, pc)
	if err != nil {
		cancel()
		return nil, err
	}
	p.stop = func() {
		cancel()
		<-closed
	}
	return p, nil
}

// windowBytes is the HTTP/2 flow-control window of a plugin connection and
// of each call on it, set on both ends. gRPC's default starts at 64 KiB and
// grows by its bandwidth estimate; an Update call under load (thousands of
// values and their heads) is about that size, and the load generator showed
// the plugins spending a fifth less CPU per value with a fixed window of a
// few calls' size. The receiver buffers at most this much per connection.
const windowBytes = 4 << 20

// dialOptions are the daemon's gRPC options for a plugin connection.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.ForceCodecV2(pluginCodec{})),
		grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes),
		experimental.WithBufferPool(pluginBuffers),
	}
}

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes),
		experimental.BufferPool(pluginBuffers), grpc.ForceServerCodecV2(pluginCodec{}))
	return grpc.NewServer(opts...)
}

// logWriter logs what a plugin writes to its stdout after the handshake.
type logWriter struct {
	l      hclog.Logger
	stream string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn("plugin wrote to "+w.stream, "output", string(p))
	return len(p), nil
}

// ErrProtocolVersion means the plugin speaks another version of the plugin
// protocol than this sdk (ProtocolVersion).
var ErrProtocolVersion = errors.New("incompatible plugin protocol version")

// VersionError is a handshake with a plugin of another protocol version.
type VersionError struct {
	Plugin int // the version the plugin speaks
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("plugin speaks protocol version %d; this driftd speaks %d "+
		"(use a plugin built with an sdk of protocol version %d, or a driftd that speaks %d)",
		e.Plugin, ProtocolVersion, ProtocolVersion, e.Plugin)
}

// Is makes errors.Is(err, ErrProtocolVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrProtocolVersion }

// goPluginVersionError is go-plugin's message for a plugin that answered the
// handshake with a protocol version the daemon does not speak.
var goPluginVersionError = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)

// translateStartError turns go-plugin's handshake errors into sdk errors;
// others are returned as they are.
func translateStartError(err error) error {
	if m := goPluginVersionError.FindStringSubmatch(err.Error()); m != nil {
		v, _ := strconv.Atoi(m[1])
		return &VersionError{Plugin: v}
	}
	return err
}

// Debug mode: a plugin started by hand, for instance under a debugger, with
// DebugEnv=1 serves without the handshake on stdout and prints a reattach
// config instead; a daemon started with that config in ReattachEnv attaches
// to it instead of running the binary.
const (
	DebugEnv    = "DRIFTD_PLUGIN_DEBUG"
	ReattachEnv = "DRIFTD_PLUGIN_REATTACH"
)

// Reattach says where a plugin in debug mode serves. ReattachEnv holds a JSON
// object of them by plugin name.
type Reattach struct {
	Protocol        string `json:"protocol"`         // "grpc"
	ProtocolVersion int    `json:"protocol_version"` // ProtocolVersion
	Network         string `json:"network"`          // "unix" or "tcp"
	Addr            string `json:"addr"`             // socket path or host:port
	Pid             int    `json:"pid"`
}

// reattachFor returns the reattach config of the named plugin in env (the
// value of ReattachEnv), or nil when env does not name it.
func reattachFor(env, name string) (*plugin.ReattachConfig, error) {
	if env == "" {
		return nil, nil
	}
	var all map[string]Reattach
	if err := json.Unmarshal([]byte(env), &all); err != nil {
		return nil, fmt.Errorf("$%s: %w", ReattachEnv, err)
	}
	r, ok := all[name]
	if !ok {
		return nil, nil
	}
	var addr net.Addr
	var err error
	switch r.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Addr)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Addr)
	default:
		err = fmt.Errorf("network %q is neither unix nor tcp", r.Network)
	}
	if err != nil {
		return nil, fmt.Errorf("$%s: plugin %q: %w", ReattachEnv, name, err)
	}
	if r.Protocol != string(plugin.ProtocolGRPC) {
		return nil, fmt.Errorf("$%s: plugin %q: protocol %q, want grpc", ReattachEnv, name, r.Protocol)
	}
	if r.ProtocolVersion != ProtocolVersion {
		return nil, &VersionError{Plugin: r.ProtocolVersion}
	}
	return &plugin.ReattachConfig{
		Protocol: plugin.ProtocolGRPC, ProtocolVersion: r.ProtocolVersion, Addr: addr, Pid: r.Pid, Test: true,
	}, nil
}

// attach connects to a plugin in debug mode.
func attach(ctx context.Context, rc *plugin.ReattachConfig, logger hclog.Logger) (*Process, error) {
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginSet(nil),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  dialOptions(),
	})
	p, err := connect(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("attach to plugin at %s (pid %d): %w", rc.Addr, rc.Pid, err)
	}
	p.reattached = true
	p.pid, p.log = rc.Pid, logger
	return p, nil
}
