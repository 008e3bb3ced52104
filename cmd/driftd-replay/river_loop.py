"""River's side of driftd-replay -river: one detector's plain loop.

    python3 river_loop.py DETECTOR VALUES [name=value ...]

DETECTOR is a driftd plugin name, VALUES a file of one value a line. The
values are read into a list first; only the loop over them is timed, each
value given to River's detector and its drift (and, for a binary
detector, warning) flag read, as driftd counts both. The update method is
looked up once, before the loop, which if anything favours River.
name=value pairs go to the detector's constructor. Prints one JSON object: the detector,
River's version, values, drifts, warnings (null for a detector that has
none) and ns_per_value.
"""

import json
import sys
import time

import river
from river import drift
from river.drift import binary

DETECTORS = {
    "pagehinkley": drift.PageHinkley,
    "adwin": drift.ADWIN,
    "kswin": drift.KSWIN,
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "fhddm": binary.FHDDM,
    "hddm_a": binary.HDDM_A,
    "hddm_w": binary.HDDM_W,
}


def setting(text):
    """A constructor argument from its text: true or false, a whole number, a number or a string."""
    if text in ("true", "false"):
        return text == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def main(argv):
    if len(argv) < 3 or argv[1] not in DETECTORS:
        sys.exit("usage: river_loop.py {%s} VALUES [name=value ...]" % ",".join(DETECTORS))
    name, path = argv[1], argv[2]
    kwargs = {}
    for pair in argv[3:]:
        key, sep, text = pair.partition("=")
        if not sep:
            sys.exit("river_loop.py: %r: want name=value" % pair)
        kwargs[key] = setting(text)
    with open(path) as f:
        values = [float(line) for line in f]
    detector = DETECTORS[name](**kwargs)
    update = detector.update
    drifts = 0
    if hasattr(detector, "warning_detected"):
        warnings = 0
        start = time.perf_counter_ns()
        for x in values:
            update(x)
            if detector.drift_detected:
                drifts += 1
            if detector.warning_detected:
                warnings += 1
        took = time.perf_counter_ns() - start
    else:
        warnings = None
        start = time.perf_counter_ns()
        for x in values:
            update(x)
            if detector.drift_detected:
                drifts += 1
        took = time.perf_counter_ns() - start
    print(json.dumps({
        "detector": name,
        "river": getattr(river, "__version__", "?"),
        "values": len(values),
        "drifts": drifts,
        "warnings": warnings,
        "ns_per_value": took / max(len(values), 1),
    }))


if __name__ == "__main__":
    main(sys.argv)
