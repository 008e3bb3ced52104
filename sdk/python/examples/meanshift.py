#!/usr/bin/env python3
"""meanshift: a driftd detector plugin written in Python.

Each stream keeps its last `recent` values and, before them, a reference
window of `reference` values. Once both are full, a value whose arrival puts
the mean of the recent window more than `threshold` away from the mean of the
reference window raises a drift ("up": only a rise, "down": only a fall).
After a drift the stream starts afresh, so one change gives one drift.

Install it as driftd-plugin-meanshift in the daemon's plugin_dir: a symlink
to this file, or a two-line shell wrapper that runs it with a Python that
has grpcio and protobuf (see docs/plugins.md).
"""

import os
import sys
from collections import deque

try:
    import driftd_plugin
except ImportError:  # run from a checkout: the kit is in sdk/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
    import driftd_plugin

from driftd_plugin import DRIFT, NUMBER, STRING, Attribute, ConfigError, ConfigErrors, Detector, Info, Streams, logger


class MeanShift(Streams, Detector):
    def info(self):
        return Info(
            name="meanshift",
            version="0.1.0",
            description="Drift when the mean of the recent values moves more than threshold away from the mean of the values before them",
        )

    def schema(self):
        return [
            Attribute("reference", NUMBER, default=100.0, description="Values in the reference window; a whole number >= 1."),
            Attribute("recent", NUMBER, default=10.0, description="Values in the recent window; a whole number >= 1."),
            Attribute("threshold", NUMBER, required=True, description="Drift when the two means differ by more than this; > 0."),
            Attribute("direction", STRING, default="both", description='"up" (the mean rises), "down" (it falls) or "both".'),
        ]

    def configure(self, config):
        # When the schema refused an attribute, configure still runs, without
        # it, so that one answer lists every problem: check what is there.
        errors = []
        for name in ("reference", "recent"):
            v = config.get(name)
            if v is not None and (v < 1 or v != int(v)):
                errors.append(ConfigError(name, "must be a whole number >= 1"))
        if config.get("threshold", 1) <= 0:
            errors.append(ConfigError("threshold", "must be > 0"))
        if config.get("direction", "both") not in ("up", "down", "both"):
            errors.append(ConfigError("direction", f'must be one of up, down, both, not "{config["direction"]}"'))
        if errors:
            raise ConfigErrors(errors)
        reference, recent = config["reference"], config["recent"]
        threshold, direction = config["threshold"], config["direction"]
        logger.info("meanshift configured", extra={"reference": reference, "recent": recent, "threshold": threshold})
        self.new = lambda: MeanShiftState(int(reference), int(recent), threshold, direction)


class MeanShiftState:
    """One stream's windows, with running sums."""

    __slots__ = ("ref", "rec", "ref_sum", "rec_sum", "n_ref", "n_rec", "threshold", "direction")

    def __init__(self, reference, recent, threshold, direction):
        self.ref, self.rec = deque(), deque()
        self.ref_sum = self.rec_sum = 0.0
        self.n_ref, self.n_rec = reference, recent
        self.threshold, self.direction = threshold, direction

    def update(self, x):
        self.rec.append(x)
        self.rec_sum += x
        if len(self.rec) > self.n_rec:
            y = self.rec.popleft()
            self.rec_sum -= y
            self.ref.append(y)
            self.ref_sum += y
            if len(self.ref) > self.n_ref:
                self.ref_sum -= self.ref.popleft()
        if len(self.ref) < self.n_ref:
            return None
        diff = self.rec_sum / self.n_rec - self.ref_sum / self.n_ref
        if self.direction == "up":
            hit = diff > self.threshold
        elif self.direction == "down":
            hit = -diff > self.threshold
        else:
            hit = abs(diff) > self.threshold
        if not hit:
            return None
        details = {
            "recent_mean": self.rec_sum / self.n_rec,
            "reference_mean": self.ref_sum / self.n_ref,
            "difference": diff,
            "threshold": self.threshold,
        }
        self.__init__(self.n_ref, self.n_rec, self.threshold, self.direction)
        return DRIFT, details


if __name__ == "__main__":
    driftd_plugin.serve(MeanShift())
