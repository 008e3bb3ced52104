"""Push model metrics to a driftd agent over its Unix socket.

    import driftd
    c = driftd.Client(socket="/run/driftd/driftd.sock")
    c.push("quality_inspector", "v1.2.3", accuracy=0.95, latency_ms=12)

push() never blocks and never raises: values wait in a bounded queue and a
background thread sends them as NDJSON, batched, over one kept-alive
connection. See docs/clients.md in the driftd repository.
"""

from ._client import Client, DEFAULT_SOCKET

__all__ = ["Client", "DEFAULT_SOCKET"]
__version__ = "0.1.0"
