"""Logging to the daemon: JSON lines on stderr in hclog's format, which
go-plugin parses and the daemon logs under the detector's name at the
line's level (the Go sdk's Logger)."""

import json
import logging
import sys
import traceback
from datetime import datetime, timezone

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# The attributes every LogRecord has; any other comes from extra= and is
# logged as a key-value pair.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def hclog_level(levelno: int) -> str:
    if levelno < logging.DEBUG:
        return "trace"
    if levelno < logging.INFO:
        return "debug"
    if levelno < logging.WARNING:
        return "info"
    if levelno < logging.ERROR:
        return "warn"
    return "error"


class HclogHandler(logging.Handler):
    """Writes each record as one JSON line: @level, @message, @timestamp
    (hclog's layout, microseconds, UTC) and the record's extra= fields."""

    def __init__(self, stream=None):
        super().__init__(TRACE)
        self.stream = stream if stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            ts = datetime.fromtimestamp(record.created, timezone.utc)
            entry = {
                "@level": hclog_level(record.levelno),
                "@message": record.getMessage(),
                "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            if record.name not in ("root", "driftd_plugin"):
                entry["logger"] = record.name
            for k, v in vars(record).items():
                if k not in _STANDARD and not k.startswith("_"):
                    entry[k] = v
            if record.exc_info:
                entry["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.stream.write(json.dumps(entry, default=str) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)


def setup(stream=None) -> None:
    """Send every logger's records to the daemon, from TRACE up."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(HclogHandler(stream))
    root.setLevel(TRACE)


# The plugin's logger: logger.info("configured", extra={"window": 50}).
logger = logging.getLogger("driftd_plugin")
