package sdk

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
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
	return r.c.update(ctx, batches)
}

// Reset makes a detector plugin forget a stream.
func (r *Remote) Reset(ctx context.Context, stream string) error {
	return r.c.reset(ctx, stream)
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
	if r.info, err = c.info(ctx); err != nil {
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
}

// Process is a running plugin binary and its gRPC connection.
type Process struct {
	pc     *plugin.Client
	remote *Remote
	pid    int
	stop   func() // set for in-process plugins
}

// StartProcess runs a plugin binary, performs the handshake and reads the
// plugin's info and schema. The process gets SIGKILL when the daemon's
// thread that started it dies, so a plugin never outlives a killed daemon.
func StartProcess(ctx context.Context, cfg ProcessConfig) (*Process, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	cmd := exec.Command(cfg.Path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(nil)},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		StartTimeout:     timeout,
		SyncStdout:       logWriter{logger, "stdout"},
		SyncStderr:       logWriter{logger, "stderr"},
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))},
	})
	p, err := connect(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	return p, nil
}

func connect(ctx context.Context, pc *plugin.Client) (*Process, error) {
	if _, err := pc.Start(); err != nil {
		pc.Kill()
		return nil, err
	}
	r, err := dialRemote(ctx, pc)
	if err != nil {
		pc.Kill()
		return nil, err
	}
	p := &Process{pc: pc, remote: r}
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

// Kill asks the plugin to exit, waits up to two seconds, then kills it.
func (p *Process) Kill() {
	p.pc.Kill()
	if p.stop != nil {
		p.stop()
	}
}

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

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
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
