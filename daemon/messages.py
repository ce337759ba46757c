"""Versioned JSON protocol between the daemon and its WebSocket clients (msgspec Structs).

Every message is a JSON object whose ``type`` field (the Struct's tag) names one of the
Structs below. Server -> client: ``hello``, ``prediction``, ``status``, ``error``; client ->
server: ``subscribe``. :func:`from_json` validates and raises :class:`ProtocolError` with one
of :data:`ERROR_CODES` on anything malformed.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Collection
from typing import Annotated, Any, ClassVar

import msgspec

from models.errors import GenredError

PROTOCOL_VERSION = 1
ERROR_CODES = (
    "bad_json", "unknown_type", "too_large", "binary_not_supported", "bad_field",
    "unknown_source",
)
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A float that is neither infinite nor NaN."""


class SourceState(enum.StrEnum):
    """A source's state as clients see it (the one spelling of it in the code).

    A source reports connecting, live, reconnecting, ended or error itself; the service
    refines live into warming_up (window not full yet), silent (newest hop too quiet) and
    no_music (the model says the window holds speech, noise or other non-music).
    """

    CONNECTING = "connecting"
    WARMING_UP = "warming_up"
    LIVE = "live"
    SILENT = "silent"
    NO_MUSIC = "no_music"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    ERROR = "error"


class ProtocolError(GenredError, ValueError):
    """A message violates the protocol; ``code`` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    """Common part: the ``type`` tag and serialization."""

    TYPE: ClassVar[str]
    """The message's ``type`` (its tag), set below for every message Struct."""

    def to_json(self) -> str:
        """Serialize to a compact JSON string; ValueError on NaN or infinity."""
        _check_finite(msgspec.structs.asdict(self))
        return _ENCODER.encode(self).decode()


class SourceInfo(msgspec.Struct, frozen=True):
    """One source as listed in ``hello``."""

    name: str
    """Source name (unique)."""
    kind: str
    """Source kind: device, url, stdin, tcp."""
    state: SourceState
    """Current state."""
    message: str | None = None
    """Human-readable detail of the state, or None."""


class Hello(_Message, frozen=True, tag="hello"):
    """First server message on every connection."""

    protocol_version: int
    """Protocol version, PROTOCOL_VERSION."""
    model: str
    """Name of the model producing predictions."""
    labels: tuple[str, ...]
    """Genre labels in model output order."""
    sources: tuple[SourceInfo, ...]
    """Configured sources and their current states."""
    server_time: Finite
    """Server wall clock, unix seconds."""

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "labels", tuple(self.labels))
        msgspec.structs.force_setattr(self, "sources", tuple(self.sources))


class Prediction(_Message, frozen=True, tag="prediction"):
    """One classified audio window of one source."""

    source: str
    """Source name."""
    window_start_ms: int
    """Window start, milliseconds of audio since the source started."""
    window_end_ms: int
    """Window end, milliseconds of audio since the source started."""
    wall_time: Finite
    """When the prediction was made, unix seconds."""
    genre: str
    """Smoothed top label."""
    confidence: Finite
    """Smoothed probability of ``genre``, 0..1."""
    probabilities: dict[str, Finite]
    """Smoothed probability per label, 0..1."""
    raw_probabilities: dict[str, Finite]
    """Unsmoothed probability per label for this window, 0..1."""
    model: str
    """Name of the model that produced it."""


class Status(_Message, frozen=True, tag="status"):
    """A source changed state."""

    source: str
    """Source name."""
    state: SourceState
    """New state."""
    message: str | None
    """Human-readable detail, or None."""
    wall_time: Finite
    """When the state changed, unix seconds."""


class Error(_Message, frozen=True, tag="error"):
    """The server rejected something the client sent."""

    code: str
    """Machine-readable code, one of ERROR_CODES."""
    message: str
    """Human-readable explanation."""


class Subscribe(_Message, frozen=True, tag="subscribe"):
    """Client request: only send events of these sources (None = all)."""

    sources: tuple[str, ...] | None
    """Source names to receive, or None for all sources."""

    def __post_init__(self) -> None:
        if self.sources is not None:
            msgspec.structs.force_setattr(self, "sources", tuple(self.sources))


Message = Hello | Prediction | Status | Error | Subscribe
_TYPES: dict[str, type[_Message]] = {
    cls.__struct_config__.tag: cls for cls in (Hello, Prediction, Status, Error, Subscribe)}
for _tag, _type in _TYPES.items():
    _type.TYPE = _tag
CLIENT_TYPES = (Subscribe.TYPE,)
"""The message types a client may send."""
_ENCODER = msgspec.json.Encoder()


def _check_finite(value: Any) -> None:
    """ValueError if ``value`` holds a NaN or infinite float (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} cannot be sent as JSON")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item)


def from_json(text: str | bytes, accepted: Collection[str] | None = None) -> Message:
    """Parse and validate one message (of the ``accepted`` types: others are unknown_type,
    e.g. CLIENT_TYPES on the server); raises ProtocolError."""
    try:
        obj = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_json", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_json", "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "message must be a JSON object")
    if "type" not in obj:
        raise ProtocolError("bad_field", "missing field 'type'")
    kind = obj["type"]
    if not isinstance(kind, str):
        raise ProtocolError("bad_field", "field 'type' must be a string")
    if kind not in _TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}")
    if accepted is not None and kind not in accepted:
        raise ProtocolError("unknown_type", f"message type {kind!r} is not accepted here "
                                            f"(only {', '.join(map(repr, accepted))})")
    try:
        return msgspec.convert(obj, type=_TYPES[kind])
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad_field", str(exc)) from None
