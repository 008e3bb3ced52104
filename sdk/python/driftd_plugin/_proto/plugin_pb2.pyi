from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Attribute(_message.Message):
    __slots__ = ["default", "description", "name", "required", "type"]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    default: Value
    description: str
    name: str
    required: bool
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., required: bool = ..., default: _Optional[_Union[Value, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ["start", "stream", "values"]
    START_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    start: int
    stream: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, stream: _Optional[str] = ..., start: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ConfigError(_message.Message):
    __slots__ = ["attribute", "message"]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    message: str
    def __init__(self, attribute: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ConfigSchema(_message.Message):
    __slots__ = ["attributes"]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    def __init__(self, attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ...) -> None: ...

class ConfigureRequest(_message.Message):
    __slots__ = ["config"]
    class ConfigEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _containers.MessageMap[str, Value]
    def __init__(self, config: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class ConfigureResponse(_message.Message):
    __slots__ = ["errors"]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[ConfigError]
    def __init__(self, errors: _Optional[_Iterable[_Union[ConfigError, _Mapping]]] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ["job"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ["error", "permanent", "retry_after_ms"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PERMANENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    error: str
    permanent: bool
    retry_after_ms: int
    def __init__(self, error: _Optional[str] = ..., permanent: bool = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Event(_message.Message):
    __slots__ = ["details", "index", "seq", "time_unix_nano", "type", "window_mean", "window_size"]
    class DetailsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MEAN_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    details: _containers.ScalarMap[str, float]
    index: int
    seq: int
    time_unix_nano: int
    type: str
    window_mean: float
    window_size: int
    def __init__(self, seq: _Optional[int] = ..., type: _Optional[str] = ..., time_unix_nano: _Optional[int] = ..., index: _Optional[int] = ..., window_size: _Optional[int] = ..., window_mean: _Optional[float] = ..., details: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ["attempt", "created_unix_nano", "detector", "event", "id", "kind", "metric", "model", "monitor", "resolves", "sink", "version"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    RESOLVES_FIELD_NUMBER: _ClassVar[int]
    SINK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    created_unix_nano: int
    detector: str
    event: Event
    id: str
    kind: str
    metric: str
    model: str
    monitor: str
    resolves: str
    sink: str
    version: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., metric: _Optional[str] = ..., detector: _Optional[str] = ..., monitor: _Optional[str] = ..., sink: _Optional[str] = ..., created_unix_nano: _Optional[int] = ..., attempt: _Optional[int] = ..., event: _Optional[_Union[Event, _Mapping]] = ..., resolves: _Optional[str] = ...) -> None: ...

class PluginInfo(_message.Message):
    __slots__ = ["description", "domain", "features", "kind", "name", "version"]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    description: str
    domain: str
    features: _containers.RepeatedScalarFieldContainer[str]
    kind: str
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., domain: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ["details", "index", "stream", "type"]
    class DetailsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    details: _containers.ScalarMap[str, float]
    index: int
    stream: str
    type: str
    def __init__(self, stream: _Optional[str] = ..., index: _Optional[int] = ..., type: _Optional[str] = ..., details: _Optional[_Mapping[str, float]] = ...) -> None: ...

class StreamName(_message.Message):
    __slots__ = ["id", "key"]
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: str
    def __init__(self, id: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class StringMap(_message.Message):
    __slots__ = ["entries"]
    class EntriesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.ScalarMap[str, str]
    def __init__(self, entries: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ["batches", "heads", "omit_details", "streams", "values"]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    OMIT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[Batch]
    heads: _containers.RepeatedScalarFieldContainer[int]
    omit_details: _containers.RepeatedScalarFieldContainer[str]
    streams: _containers.RepeatedCompositeFieldContainer[StreamName]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, batches: _Optional[_Iterable[_Union[Batch, _Mapping]]] = ..., streams: _Optional[_Iterable[_Union[StreamName, _Mapping]]] = ..., heads: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., omit_details: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateResponse(_message.Message):
    __slots__ = ["signals"]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    def __init__(self, signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ["bool", "number", "string", "string_map"]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    STRING_MAP_FIELD_NUMBER: _ClassVar[int]
    bool: bool
    number: float
    string: str
    string_map: StringMap
    def __init__(self, number: _Optional[float] = ..., string: _Optional[str] = ..., bool: bool = ..., string_map: _Optional[_Union[StringMap, _Mapping]] = ...) -> None: ...
