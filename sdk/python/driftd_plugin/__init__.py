"""driftd_plugin: write a driftd detector plugin in Python.

The Python counterpart of the Go sdk (github.com/driftd/driftd/sdk): the
same protocol (hashicorp/go-plugin over gRPC, sdk/proto/plugin.proto), the
same contract and the same per-stream helper. A complete plugin:

    #!/usr/bin/env python3
    from driftd_plugin import DRIFT, Attribute, Detector, Info, Streams, NUMBER, serve

    class Above(Streams, Detector):
        def info(self):
            return Info(name="above", version="1.0.0", description="drift above a limit")

        def schema(self):
            return [Attribute("limit", NUMBER, default=1.0, description="drift above this value")]

        def configure(self, config):
            limit = config["limit"]
            self.new = lambda: AboveState(limit)

    class AboveState:
        def __init__(self, limit):
            self.limit = limit

        def update(self, x):
            if x > self.limit:
                return DRIFT, {"value": x, "limit": self.limit}
            return None

    if __name__ == "__main__":
        serve(Above())

Name the executable driftd-plugin-above, put it in the daemon's plugin_dir
and use it in a detector block. See docs/plugins.md.
"""

from .detector import (
    BOOL,
    DOMAIN_BINARY,
    DOMAIN_REAL,
    DRIFT,
    KIND_DETECTOR,
    NUMBER,
    STRING,
    WARNING,
    Attribute,
    BadRequest,
    Batch,
    ConfigError,
    ConfigErrors,
    Detector,
    Info,
    Signal,
    StreamDetector,
    Streams,
    check_values,
)
from .log import TRACE, logger
from .schema import apply as apply_schema
from .server import PROTOCOL_VERSION, serve

__all__ = [
    "BOOL",
    "DOMAIN_BINARY",
    "DOMAIN_REAL",
    "DRIFT",
    "KIND_DETECTOR",
    "NUMBER",
    "PROTOCOL_VERSION",
    "STRING",
    "TRACE",
    "WARNING",
    "Attribute",
    "BadRequest",
    "Batch",
    "ConfigError",
    "ConfigErrors",
    "Detector",
    "Info",
    "Signal",
    "StreamDetector",
    "Streams",
    "apply_schema",
    "check_values",
    "logger",
    "serve",
]
