"""The detector contract and its value types, mirroring the Go sdk's
detector.go and streams.go."""

import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union

# Plugin kinds. This kit serves detectors; write sink plugins in Go with the sdk package.
KIND_DETECTOR = "detector"

# Signal types.
DRIFT = "drift"
WARNING = "warning"

# Value domains (sdk.Domain): what a detector takes. The daemon refuses other
# values of the metric at ingestion, so the detector never sees them.
DOMAIN_REAL = ""  # any finite number
DOMAIN_BINARY = "binary"  # 0 or 1

# Attribute types of a config schema (sdk.Type).
NUMBER = "number"
STRING = "string"
BOOL = "bool"


@dataclass(frozen=True)
class Info:
    """Describes a plugin. name is the part after "driftd-plugin-" in the
    file name the daemon runs."""

    name: str
    version: str = ""
    description: str = ""
    kind: str = KIND_DETECTOR
    domain: str = DOMAIN_REAL


@dataclass(frozen=True)
class Attribute:
    """Declares one attribute of the plugin's config block. default is a
    float, str or bool matching type, or None for none."""

    name: str
    type: str
    default: object = None
    required: bool = False
    description: str = ""


@dataclass
class Batch:
    """A run of consecutive values of one stream: values[i] has the stream
    index start + i. stream is an opaque key chosen by the daemon."""

    stream: str
    start: int
    values: Sequence[float]


@dataclass
class Signal:
    """A drift or warning raised by the value at index of stream. details
    carries the detector's own figures (statistic, threshold, ...)."""

    stream: str
    index: int
    type: str
    details: Dict[str, float] = field(default_factory=dict)


class ConfigError(Exception):
    """A problem with one attribute of the config block (or with the whole
    block when attribute is empty). The daemon reports it at that attribute
    in the HCL file. Raise several at once with ConfigErrors."""

    def __init__(self, attribute: str, message: str):
        super().__init__(f"{attribute}: {message}" if attribute else message)
        self.attribute = attribute
        self.message = message


class ConfigErrors(Exception):
    """Several ConfigErrors, all reported."""

    def __init__(self, errors: List[ConfigError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)


class BadRequest(Exception):
    """The detector refuses the input of a call (gRPC InvalidArgument; the
    Go sdk's ErrBadRequest)."""


class Detector:
    """The contract of a detector plugin (sdk.Detector). Subclass it and
    implement the four methods; mix in Streams for per-stream state, which
    brings update and reset.

    The daemon calls info and schema first, then configure once with the
    config already checked against the schema and completed with its
    defaults, then update with batches in stream order. The result of update
    must not depend on how values were split into batches. After a drift a
    detector resets that stream itself, as River's detectors do.
    """

    def info(self) -> Info:
        raise NotImplementedError

    def schema(self) -> List[Attribute]:
        return []

    def configure(self, config: Dict[str, object]) -> None:
        """Raise ConfigError or ConfigErrors to refuse the config."""

    def update(self, batches: List[Batch]) -> List[Signal]:
        raise NotImplementedError

    def reset(self, stream: str) -> None:
        """Forget a stream, so its next value starts it afresh."""
        raise NotImplementedError("this detector cannot reset a stream")


class StreamDetector(Protocol):
    """One stream's state (sdk.StreamDetector): update takes the next value
    and returns None, or (DRIFT or WARNING, details), or a list of such
    pairs when one value raises several signals (sdk.MultiSignaler), as
    River's EDDM raises a warning and a drift together."""

    def update(self, x: float) -> Union[None, Tuple[str, Dict[str, float]], List[Tuple[str, Dict[str, float]]]]: ...


def check_values(values: Sequence[float], domain: str = DOMAIN_REAL) -> None:
    """Raise BadRequest for the first value that is not finite, or not 0 or 1
    in the binary domain (sdk.Domain.Check)."""
    for i, v in enumerate(values):
        if math.isnan(v) or math.isinf(v):
            raise BadRequest(f"value {i} is {v}: value is not finite")
        if domain == DOMAIN_BINARY and v != 0 and v != 1:
            raise BadRequest(f"value {i} is {v}, not 0 or 1")


class Streams:
    """Keeps one StreamDetector per stream and implements update and reset
    on top of them, for detectors whose streams are independent
    (sdk.Streams). Mix it into a Detector and set self.new in configure:

        class MeanShift(Streams, Detector):
            def configure(self, config):
                self.new = lambda: MeanShiftState(config["window"])

    update refuses values outside the domain info() declares (DOMAIN_BINARY:
    anything but 0 and 1), so the domain is declared once, in Info. Setting
    self.domain overrides it.
    """

    new: Optional[Callable[[], StreamDetector]] = None
    domain: Optional[str] = None

    def _domain(self) -> str:
        if self.domain is not None:
            return self.domain
        try:
            return self.__info_domain
        except AttributeError:
            info = getattr(self, "info", None)
            self.__info_domain = info().domain if callable(info) else DOMAIN_REAL
            return self.__info_domain

    def _state(self):
        # Created on first use, so subclasses need not call __init__.
        try:
            return self.__streams, self.__lock
        except AttributeError:
            self.__streams: Dict[str, StreamDetector] = {}
            self.__lock = threading.Lock()
            return self.__streams, self.__lock

    def update(self, batches: List[Batch]) -> List[Signal]:
        streams, lock = self._state()
        with lock:
            for b in batches:
                try:
                    check_values(b.values, self._domain())
                except BadRequest as e:
                    raise BadRequest(f"stream {b.stream!r}: {e}") from None
            out: List[Signal] = []
            for b in batches:
                st = streams.get(b.stream)
                if st is None:
                    if self.new is None:
                        raise RuntimeError("Streams.new is not set: set it in configure")
                    st = streams[b.stream] = self.new()
                upd = st.update
                for i, x in enumerate(b.values):
                    r = upd(x)
                    if r is None:
                        continue
                    if isinstance(r, list):  # several signals for one value
                        out.extend(Signal(b.stream, b.start + i, t, d or {}) for t, d in r)
                    else:
                        out.append(Signal(b.stream, b.start + i, r[0], r[1] or {}))
            return out

    def reset(self, stream: str) -> None:
        streams, lock = self._state()
        with lock:
            streams.pop(stream, None)

    def __len__(self) -> int:
        streams, lock = self._state()
        with lock:
            return len(streams)
