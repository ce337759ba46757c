"""Versioned JSON protocol between the daemon and its WebSocket clients.

Every message is a JSON object whose ``type`` field names one of the dataclasses below.
Server -> client: ``hello``, ``prediction``, ``status``, ``error``; client -> server:
``subscribe``. :func:`from_json` validates and raises :class:`ProtocolError` with one of
:data:`ERROR_CODES` on anything malformed.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
ERROR_CODES = (
    "bad_json", "unknown_type", "too_large", "binary_not_supported", "bad_field",
    "unknown_source",
)


class SourceState(enum.StrEnum):
    """A source's state as clients see it (the one spelling of it in the code).

    A source reports connecting, live, reconnecting, ended or error itself; the service
    refines live into warming_up (window not full yet) and silent (newest hop too quiet).
    """

    CONNECTING = "connecting"
    WARMING_UP = "warming_up"
    LIVE = "live"
    SILENT = "silent"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    ERROR = "error"


class ProtocolError(ValueError):
    """A message violates the protocol; ``code`` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class SourceInfo:
    """One source as listed in ``hello``."""

    name: str
    """Source name (unique)."""
    kind: str
    """Source kind: device, url, stdin, tcp."""
    state: str
    """Current state, a SourceState value."""
    message: str | None = None
    """Human-readable detail of the state, or None."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"name": self.name, "kind": self.kind, "state": self.state,
                "message": self.message}


@dataclass(frozen=True)
class Hello:
    """First server message on every connection."""

    TYPE: ClassVar[str] = "hello"
    protocol_version: int
    """Protocol version, PROTOCOL_VERSION."""
    model: str
    """Name of the model producing predictions."""
    labels: tuple[str, ...]
    """Genre labels in model output order."""
    sources: tuple[SourceInfo, ...]
    """Configured sources and their current states."""
    server_time: float
    """Server wall clock, unix seconds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "sources", tuple(self.sources))

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return _dumps({"type": self.TYPE, "protocol_version": self.protocol_version,
                       "model": self.model, "labels": list(self.labels),
                       "sources": [s.to_dict() for s in self.sources],
                       "server_time": self.server_time})


@dataclass(frozen=True)
class Prediction:
    """One classified audio window of one source."""

    TYPE: ClassVar[str] = "prediction"
    source: str
    """Source name."""
    window_start_ms: int
    """Window start, milliseconds of audio since the source started."""
    window_end_ms: int
    """Window end, milliseconds of audio since the source started."""
    wall_time: float
    """When the prediction was made, unix seconds."""
    genre: str
    """Smoothed top label."""
    confidence: float
    """Smoothed probability of ``genre``, 0..1."""
    probabilities: dict[str, float] = field(default_factory=dict)
    """Smoothed probability per label, 0..1."""
    raw_probabilities: dict[str, float] = field(default_factory=dict)
    """Unsmoothed probability per label for this window, 0..1."""
    model: str = ""
    """Name of the model that produced it."""

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return _dumps({"type": self.TYPE, "source": self.source,
                       "window_start_ms": self.window_start_ms,
                       "window_end_ms": self.window_end_ms, "wall_time": self.wall_time,
                       "genre": self.genre, "confidence": self.confidence,
                       "probabilities": self.probabilities,
                       "raw_probabilities": self.raw_probabilities, "model": self.model})


@dataclass(frozen=True)
class Status:
    """A source changed state."""

    TYPE: ClassVar[str] = "status"
    source: str
    """Source name."""
    state: str
    """New state, a SourceState value."""
    message: str | None
    """Human-readable detail, or None."""
    wall_time: float
    """When the state changed, unix seconds."""

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return _dumps({"type": self.TYPE, "source": self.source, "state": self.state,
                       "message": self.message, "wall_time": self.wall_time})


@dataclass(frozen=True)
class Error:
    """The server rejected something the client sent."""

    TYPE: ClassVar[str] = "error"
    code: str
    """Machine-readable code, one of ERROR_CODES."""
    message: str
    """Human-readable explanation."""

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        return _dumps({"type": self.TYPE, "code": self.code, "message": self.message})


@dataclass(frozen=True)
class Subscribe:
    """Client request: only send events of these sources (None = all)."""

    TYPE: ClassVar[str] = "subscribe"
    sources: tuple[str, ...] | None = None
    """Source names to receive, or None for all sources."""

    def __post_init__(self) -> None:
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(self.sources))

    def to_json(self) -> str:
        """Serialize to a compact JSON string."""
        sources = None if self.sources is None else list(self.sources)
        return _dumps({"type": self.TYPE, "sources": sources})


Message = Hello | Prediction | Status | Error | Subscribe


def _bad(key: str, expected: str) -> ProtocolError:
    return ProtocolError("bad_field", f"field {key!r} must be {expected}")


def _get(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise ProtocolError("bad_field", f"missing field {key!r}")
    return obj[key]


def _str(obj: dict[str, Any], key: str) -> str:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise _bad(key, "a string")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = _get(obj, key)
    if value is not None and not isinstance(value, str):
        raise _bad(key, "a string or null")
    return value


def _int(obj: dict[str, Any], key: str) -> int:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, "an integer")
    return value


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(key, "a finite number")
    return float(value)


def _float(obj: dict[str, Any], key: str) -> float:
    return _as_float(_get(obj, key), key)


def _state(obj: dict[str, Any], key: str) -> str:
    value = _str(obj, key)
    if value not in SourceState.__members__.values():
        raise _bad(key, f"one of {tuple(map(str, SourceState))}")
    return value


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(key, "a list of strings")
    return tuple(value)


def _prob_dict(obj: dict[str, Any], key: str) -> dict[str, float]:
    value = _get(obj, key)
    if not isinstance(value, dict):
        raise _bad(key, "an object of label -> number")
    return {label: _as_float(p, f"{key}.{label}") for label, p in value.items()}


def _source_info(value: Any, index: int) -> SourceInfo:
    if not isinstance(value, dict):
        raise _bad(f"sources[{index}]", "an object")
    return SourceInfo(name=_str(value, "name"), kind=_str(value, "kind"),
                      state=_state(value, "state"), message=_opt_str(value, "message"))


def _hello(obj: dict[str, Any]) -> Hello:
    sources = _get(obj, "sources")
    if not isinstance(sources, list):
        raise _bad("sources", "a list")
    return Hello(protocol_version=_int(obj, "protocol_version"), model=_str(obj, "model"),
                 labels=_str_list(_get(obj, "labels"), "labels"),
                 sources=tuple(_source_info(s, i) for i, s in enumerate(sources)),
                 server_time=_float(obj, "server_time"))


def _prediction(obj: dict[str, Any]) -> Prediction:
    return Prediction(source=_str(obj, "source"), window_start_ms=_int(obj, "window_start_ms"),
                      window_end_ms=_int(obj, "window_end_ms"),
                      wall_time=_float(obj, "wall_time"), genre=_str(obj, "genre"),
                      confidence=_float(obj, "confidence"),
                      probabilities=_prob_dict(obj, "probabilities"),
                      raw_probabilities=_prob_dict(obj, "raw_probabilities"),
                      model=_str(obj, "model"))


def _status(obj: dict[str, Any]) -> Status:
    return Status(source=_str(obj, "source"), state=_state(obj, "state"),
                  message=_opt_str(obj, "message"), wall_time=_float(obj, "wall_time"))


def _error(obj: dict[str, Any]) -> Error:
    return Error(code=_str(obj, "code"), message=_str(obj, "message"))


def _subscribe(obj: dict[str, Any]) -> Subscribe:
    sources = _get(obj, "sources")
    return Subscribe(sources=None if sources is None else _str_list(sources, "sources"))


_DECODERS = {
    Hello.TYPE: _hello, Prediction.TYPE: _prediction, Status.TYPE: _status,
    Error.TYPE: _error, Subscribe.TYPE: _subscribe,
}


def _reject_constant(name: str) -> Any:
    raise ProtocolError("bad_json", f"non-standard JSON constant {name}")


def from_json(text: str | bytes) -> Message:
    """Parse and validate one message; raises ProtocolError."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError("bad_json", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_json", "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "message must be a JSON object")
    kind = _get(obj, "type")
    if not isinstance(kind, str):
        raise _bad("type", "a string")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}")
    return decoder(obj)
