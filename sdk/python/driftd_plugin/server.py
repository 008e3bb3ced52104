"""serve(): runs a Detector as a driftd plugin over hashicorp/go-plugin's
gRPC protocol, as the Go sdk's Serve does.

What go-plugin expects of a plugin process, and what this module does:

- The daemon sets the magic cookie DRIFTD_PLUGIN in the environment; without
  it the process explains that it is a plugin and exits 1.
- The plugin listens on a Unix socket (in $PLUGIN_UNIX_SOCKET_DIR, else
  $TMPDIR) and prints one handshake line on stdout:
  CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK-TYPE|NETWORK-ADDR|PROTOCOL,
  here 1|1|unix|/path/to/socket|grpc.
- It serves, besides driftd's Plugin and Detector services:
  grpc.health.v1.Health with the service "plugin" SERVING (go-plugin's
  Ping), plugin.GRPCController/Shutdown (the daemon's request to exit), and
  plugin.GRPCStdio/StreamStdio (what the plugin writes to stdout after the
  handshake, which the daemon logs).
- Logs go to stderr as JSON lines in hclog's format (see log.py).
- SIGINT is ignored, as go-plugin does: the daemon, which gets it too,
  stops its plugins itself. The process exits when the daemon goes away
  (the daemon also sets Pdeathsig on it).
"""

import logging
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

from . import log, schema
from ._proto import plugin_pb2 as pb
from ._proto import plugin_pb2_grpc as pb_grpc
from .detector import KIND_DETECTOR, Batch, BadRequest, ConfigError, ConfigErrors, Detector

# The handshake driftd and its plugins share (the Go sdk's Handshake).
PROTOCOL_VERSION = 1
CORE_PROTOCOL_VERSION = 1  # go-plugin's own
MAGIC_COOKIE_KEY = "DRIFTD_PLUGIN"
MAGIC_COOKIE_VALUE = "c2f0e1d8-driftd-plugin-v1"
DEBUG_ENV = "DRIFTD_PLUGIN_DEBUG"
REATTACH_ENV = "DRIFTD_PLUGIN_REATTACH"

# One gRPC message in either direction (MaxMessageBytes in internal/pluginwire).
MAX_MESSAGE_BYTES = 64 << 20

_log = logging.getLogger("driftd_plugin")


# --- driftd's services ------------------------------------------------------


def _value_to_proto(v) -> pb.Value:
    if isinstance(v, bool):
        return pb.Value(bool=v)
    if isinstance(v, (int, float)):
        return pb.Value(number=float(v))
    if isinstance(v, str):
        return pb.Value(string=v)
    raise TypeError(f"unsupported config value {v!r}")


def _value_from_proto(v: pb.Value):
    kind = v.WhichOneof("kind")
    return getattr(v, kind) if kind else None


def _abort(context, code, message: str):
    context.abort(code, message)


def _call(context, op: str, fn, *args):
    """Runs one call of the implementation, turning its exceptions into gRPC
    statuses as the Go sdk's toStatus does."""
    try:
        return fn(*args)
    except BadRequest as e:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e))
    except Exception as e:  # the plugin's own bug: keep serving, tell the daemon
        _log.error(f"{op} failed", exc_info=True)
        _abort(context, grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


# The wire features the kit speaks beyond the first form of each call (see
# PluginInfo in plugin.proto): omit_details, not packed_update.
FEATURES = ["omit_details"]


class _PluginServicer(pb_grpc.PluginServicer):
    def __init__(self, impl: Detector, info, attrs):
        self.impl = impl
        self.info = info
        self.attrs = attrs
        self.lock = threading.Lock()
        self.configured = False

    def Info(self, request, context):
        i = self.info
        return pb.PluginInfo(
            name=i.name, kind=i.kind, version=i.version, description=i.description, domain=i.domain, features=FEATURES
        )

    def Schema(self, request, context):
        out = pb.ConfigSchema()
        for a in self.attrs:
            pa = out.attributes.add(name=a.name, type=a.type, required=a.required, description=a.description)
            if a.default is not None:
                pa.default.CopyFrom(_value_to_proto(a.default))
        return out

    def Configure(self, request, context):
        with self.lock:
            if self.configured:
                _abort(context, grpc.StatusCode.INTERNAL, "configure: plugin is already configured")
            config = {k: _value_from_proto(v) for k, v in request.config.items()}
            # As the Go sdk does: the plugin checks what the schema let
            # through even when it refused something, so that one answer
            # lists every problem. Its configure may then miss attributes;
            # what that makes it raise, other than ConfigErrors, is dropped.
            errors = []
            try:
                full = schema.apply(self.attrs, config)
            except ConfigErrors as e:
                errors, full = list(e.errors), e.config
            try:
                self.impl.configure(full)
            except ConfigErrors as e:
                errors += e.errors
            except ConfigError as e:
                errors.append(e)
            except Exception as e:
                if not errors:
                    _log.error("configure failed", exc_info=True)
                    errors.append(ConfigError("", f"{type(e).__name__}: {e}"))
            if errors:
                return pb.ConfigureResponse(errors=[pb.ConfigError(attribute=x.attribute, message=x.message) for x in errors])
            self.configured = True
            return pb.ConfigureResponse()


class _DetectorServicer(pb_grpc.DetectorServicer):
    def __init__(self, impl: Detector):
        self.impl = impl

    def Update(self, request, context):
        batches = [Batch(b.stream, b.start, b.values) for b in request.batches]
        signals = _call(context, "update", self.impl.update, batches)
        omit = set(request.omit_details)  # types whose details the daemon does without
        resp = pb.UpdateResponse()
        for s in signals or ():
            if s.type in omit:
                resp.signals.add(stream=s.stream, index=s.index, type=s.type)
            else:
                resp.signals.add(stream=s.stream, index=s.index, type=s.type, details=s.details)
        return resp

    def Reset(self, request, context):
        _call(context, "reset", self.impl.reset, request.stream)
        return pb.Empty()


# --- go-plugin's services ---------------------------------------------------
#
# Three tiny services whose messages are encoded by hand rather than with
# generated code: registering go-plugin's "plugin.Empty" or gRPC's
# "grpc.health.v1.*" messages in protobuf's default descriptor pool would
# clash with any other library in the process that registers them too.
#
#   service grpc.health.v1.Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
#     message HealthCheckResponse { ServingStatus status = 1; }  // SERVING = 1
#   service plugin.GRPCController { rpc Shutdown(Empty) returns (Empty); }
#   service plugin.GRPCStdio { rpc StreamStdio(google.protobuf.Empty) returns (stream StdioData); }
#     message StdioData { Channel channel = 1; bytes data = 2; }   // STDOUT = 1, STDERR = 2

_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}
_STDOUT = 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _stdio_data(channel: int, data: bytes) -> bytes:
    return b"\x08" + _varint(channel) + b"\x12" + _varint(len(data)) + data


def _health_request_service(raw: bytes) -> str:
    # HealthCheckRequest{string service = 1}: "" or "plugin" in practice.
    if len(raw) >= 2 and raw[0] == 0x0A:
        n, i, shift = 0, 1, 0
        while i < len(raw):
            b = raw[i]
            n |= (b & 0x7F) << shift
            i += 1
            shift += 7
            if not b & 0x80:
                break
        return raw[i : i + n].decode("utf-8", "replace")
    return ""


def _identity(b: bytes) -> bytes:
    return b


def _go_plugin_handlers(shutdown: threading.Event, stdout: "queue.Queue[bytes]"):
    def check(raw, context):
        service = _health_request_service(raw)
        if service not in ("", "plugin"):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return _SERVING

    def shutdown_rpc(raw, context):
        shutdown.set()
        return b""

    def stream_stdio(raw, context):
        while not shutdown.is_set() and context.is_active():
            try:
                data = stdout.get(timeout=0.1)
            except queue.Empty:
                continue
            yield _stdio_data(_STDOUT, data)

    rpc = grpc.unary_unary_rpc_method_handler
    return [
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {"Check": rpc(check, request_deserializer=_identity, response_serializer=_identity)},
        ),
        grpc.method_handlers_generic_handler(
            "plugin.GRPCController",
            {"Shutdown": rpc(shutdown_rpc, request_deserializer=_identity, response_serializer=_identity)},
        ),
        grpc.method_handlers_generic_handler(
            "plugin.GRPCStdio",
            {
                "StreamStdio": grpc.unary_stream_rpc_method_handler(
                    stream_stdio, request_deserializer=_identity, response_serializer=_identity
                )
            },
        ),
    ]


# --- serve ------------------------------------------------------------------


def _check(impl: Detector):
    info = impl.info()
    if not info.name:
        raise ValueError("plugin info has no name")
    if info.kind != KIND_DETECTOR:
        raise ValueError(f"plugin {info.name!r} has unsupported kind {info.kind!r}")
    attrs = list(impl.schema())
    schema.validate(attrs)
    return info, attrs


def _socket_path() -> str:
    d = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="plugin", dir=d)
    os.close(fd)
    os.remove(path)
    return path


def _capture_stdout(into: "queue.Queue[bytes]") -> None:
    """Points fd 1 at a pipe whose data the GRPCStdio stream carries to the
    daemon, which logs it: after the handshake, stdout is no protocol. When
    nobody reads the stream, output beyond the queue is dropped: stray
    output must never block the plugin."""
    r, w = os.pipe()
    sys.stdout.flush()
    os.dup2(w, 1)
    os.close(w)
    sys.stdout.reconfigure(line_buffering=True)

    def pump():
        while True:
            data = os.read(r, 1024)
            if not data:
                return
            try:
                into.put_nowait(data)
            except queue.Full:
                pass

    threading.Thread(target=pump, name="driftd-stdout", daemon=True).start()


def _exit_with_parent(ppid: int) -> None:
    """Ends the plugin when its parent is gone, behind the daemon's
    Pdeathsig."""
    while True:
        time.sleep(1)
        if os.getppid() != ppid:
            os._exit(1)


def _excepthook(exc_type, exc, tb):
    _log.error("uncaught exception", exc_info=(exc_type, exc, tb))


def serve(impl: Detector) -> None:
    """Runs impl as a driftd plugin until the daemon stops it: the body of a
    plugin's main. Run by hand, it explains that it is a plugin and exits,
    unless $DRIFTD_PLUGIN_DEBUG is 1: then it prints a reattach config for
    $DRIFTD_PLUGIN_REATTACH and serves one daemon that attaches to it."""
    debug = os.environ.get(DEBUG_ENV) == "1"
    if not debug and os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This program is a driftd plugin: the driftd daemon runs it. Name it\n"
            "driftd-plugin-<name>, put it in the daemon's plugin_dir and use it in a\n"
            "detector block. To debug it, run it with DRIFTD_PLUGIN_DEBUG=1.\n"
        )
        sys.exit(1)
    log.setup(sys.stderr)
    sys.excepthook = _excepthook
    threading.excepthook = lambda a: _excepthook(a.exc_type, a.exc_value, a.exc_traceback)
    try:
        info, attrs = _check(impl)
    except Exception as e:
        sys.stderr.write(f"driftd plugin: {e}\n")
        sys.exit(1)
    if not debug:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="driftd-parent", daemon=True).start()

    shutdown = threading.Event()
    stdout: "queue.Queue[bytes]" = queue.Queue(maxsize=1024)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="driftd-grpc"),
        handlers=_go_plugin_handlers(shutdown, stdout),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_PluginServicer_to_server(_PluginServicer(impl, info, attrs), server)
    pb_grpc.add_DetectorServicer_to_server(_DetectorServicer(impl), server)
    path = _socket_path()
    server.add_insecure_port("unix:" + path)
    server.start()
    try:
        if debug:
            _print_reattach(info, path)
            signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
            signal.signal(signal.SIGINT, lambda *_: shutdown.set())
        else:
            sys.stdout.write(f"{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|unix|{path}|grpc\n")
            sys.stdout.flush()
            _capture_stdout(stdout)
        _log.debug("plugin serving", extra={"network": "unix", "address": path})
        while not shutdown.wait(0.5):
            pass
        _log.debug("plugin shutting down")
    finally:
        server.stop(grace=1).wait()
        try:
            os.remove(path)
        except OSError:
            pass


def _print_reattach(info, path: str) -> None:
    import json

    env = json.dumps(
        {info.name: {"protocol": "grpc", "protocol_version": PROTOCOL_VERSION, "network": "unix", "addr": path, "pid": os.getpid()}},
        separators=(",", ":"),
    )
    sys.stdout.write(
        f"driftd plugin {info.name} {info.version} in debug mode, pid {os.getpid()}. Start the daemon with:\n\n"
        f"{REATTACH_ENV}='{env}'\n\n"
        "The plugin serves that daemon and exits when it stops the plugin.\n"
    )
    sys.stdout.flush()
