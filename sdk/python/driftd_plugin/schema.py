"""Config schemas: the checks of the Go sdk's schema.go."""

import math
from typing import Dict, List

from .detector import BOOL, NUMBER, STRING, Attribute, ConfigError

TYPES = (NUMBER, STRING, BOOL)


def validate(schema: List[Attribute]) -> None:
    """Raise ValueError unless names are unique and non-empty, types known
    and defaults of the declared type (sdk.Schema.Validate)."""
    problems = []
    seen = set()
    for a in schema:
        if not a.name:
            problems.append("attribute with an empty name")
            continue
        if a.name in seen:
            problems.append(f"attribute {a.name!r} declared twice")
        seen.add(a.name)
        if a.type not in TYPES:
            problems.append(f"attribute {a.name!r}: unknown type {a.type!r}")
            continue
        if a.default is not None:
            msg = check_type(a.type, a.default)
            if msg:
                problems.append(f"attribute {a.name!r} default: {msg}")
    if problems:
        raise ValueError("; ".join(problems))


def apply(schema: List[Attribute], config: Dict[str, object]) -> Dict[str, object]:
    """Check config against schema and return a copy completed with the
    defaults (sdk.Schema.Apply). Every problem is reported, as a list of
    ConfigError in a ConfigErrors whose .config holds the rest: the config
    without the attributes at fault."""
    from .detector import ConfigErrors

    by_name = {a.name: a for a in schema}
    out: Dict[str, object] = {}
    errors = []
    for name in sorted(config):
        a = by_name.get(name)
        if a is None:
            errors.append(ConfigError(name, "unsupported attribute"))
            continue
        v = config[name]
        if isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        msg = check_type(a.type, v)
        if msg:
            errors.append(ConfigError(name, msg))
            continue
        out[name] = v
    for a in schema:
        if a.name in config:
            continue
        if a.default is not None:
            out[a.name] = float(a.default) if a.type == NUMBER else a.default
        elif a.required:
            errors.append(ConfigError(a.name, "required attribute is missing"))
    if errors:
        e = ConfigErrors(errors)
        e.config = out
        raise e
    return out


def check_type(typ: str, v: object) -> str:
    """The problem with v as a value of typ, or ""."""
    if typ == NUMBER:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"must be a number, not {type_name(v)}"
        if math.isnan(v) or math.isinf(v):
            return "must be a finite number"
    elif typ == STRING:
        if not isinstance(v, str):
            return f"must be a string, not {type_name(v)}"
    elif typ == BOOL:
        if not isinstance(v, bool):
            return f"must be a bool, not {type_name(v)}"
    return ""


def type_name(v: object) -> str:
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    return type(v).__name__
