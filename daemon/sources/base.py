"""What every audio source kind shares: its config base, the Source protocol, the common
setup (SourceBase), backoff and state reporting.

A source kind is one module under daemon/sources/ with its config (a SourceConfig subclass
that validates itself, builds its source and parses its ``--source`` spec) plus one line in
daemon/sources/__init__.py's SOURCE_TYPES.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from daemon.messages import SourceState
from daemon.schema import check
from models.errors import GenredError

_LOGGER = logging.getLogger(__name__)

StateCallback = Callable[[str, str | None], None]
"""Called with (state, message) whenever a source's state changes."""


class SourceConfigError(GenredError):
    """A source cannot be set up as configured (unknown device, bad format, ...)."""


class Source(Protocol):
    """An audio source yielding mono float32 chunks at the contract rate (44100 Hz)."""

    name: str
    kind: str
    overflows: int

    def chunks(self) -> AsyncIterator[np.ndarray]:
        """Mono float32 chunks at 44100 Hz until the source ends or is closed."""
        ...

    async def close(self) -> None:
        """Stop the source and release its process, stream or socket."""
        ...


@dataclass(frozen=True)
class BackoffPolicy:
    """Reconnect timing (config key ``backoff``): exponential delays, proportional jitter.

    Attempt ``a`` (0 = first retry) waits ``base = min(max_seconds, initial_seconds *
    multiplier ** a)`` scaled by a uniform factor in ``[1 - jitter_fraction, 1 +
    jitter_fraction]`` (proportional jitter: retries of many clients spread out while the
    mean delay stays ``base``; at the cap a delay may exceed ``max_seconds`` by the jitter).
    """

    initial_seconds: float = 1.0
    """First retry delay in seconds."""
    max_seconds: float = 30.0
    """Longest delay before jitter in seconds."""
    multiplier: float = 2.0
    """Delay growth factor per failed attempt."""
    jitter_fraction: float = 0.2
    """Half-width of the uniform jitter as a fraction of the delay (0 = no jitter)."""
    reset_after_seconds: float = 10.0
    """Seconds of continuous audio after which the attempt count resets to 0."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(self.initial_seconds > 0, f"{path}.initial_seconds", "must be > 0",
              self.initial_seconds)
        check(self.max_seconds >= self.initial_seconds, f"{path}.max_seconds",
              "must be >= initial_seconds", self.max_seconds)
        check(self.multiplier >= 1, f"{path}.multiplier", "must be >= 1", self.multiplier)
        check(0 <= self.jitter_fraction < 1, f"{path}.jitter_fraction", "must be in [0, 1)",
              self.jitter_fraction)
        check(self.reset_after_seconds >= 0, f"{path}.reset_after_seconds", "must be >= 0",
              self.reset_after_seconds)

    def delay_seconds(self, attempt: int, rng: random.Random | np.random.Generator) -> float:
        """Delay in seconds before retry ``attempt`` (0-based); ``rng.random()`` is in [0, 1)."""
        exponent = min(max(attempt, 0), 64)
        base = min(self.max_seconds, self.initial_seconds * self.multiplier**exponent)
        factor = 1.0 + self.jitter_fraction * (2.0 * float(rng.random()) - 1.0)
        return max(0.0, base * factor)


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """What every source's config has; each kind subclasses it with its own fields."""

    KINDS: ClassVar[tuple[str, ...]] = ()
    """The ``kind`` values this config class handles."""

    name: str
    """Unique name shown to clients."""
    kind: str
    """The source kind (a key of daemon.sources.SOURCE_KINDS)."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    """Reconnect timing."""

    def validate(self, path: str) -> None:
        """Checks common to every kind; subclasses add theirs."""
        check(bool(self.name.strip()), f"{path}.name", "must not be empty", self.name)
        self.backoff.validate(f"{path}.backoff")

    def resolve_paths(self, resolve: Callable[[str], str]) -> SourceConfig:
        """This config with local file paths made absolute by ``resolve`` (default: none)."""
        return self

    def build(self, on_state: StateCallback) -> Source:
        """The source this config describes (SourceConfigError if it cannot be set up)."""
        raise NotImplementedError

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> SourceConfig | None:
        """The config a ``--source`` SPEC describes, or None if SPEC is not of this kind."""
        raise NotImplementedError


def check_layout(path: str, sample_rate_hz: int | None, channels: int) -> None:
    """Range checks of an input rate (None: the device's) and channel count."""
    if sample_rate_hz is not None:
        check(8000 <= sample_rate_hz <= 384000, f"{path}.sample_rate_hz",
              "must be in 8000..384000", sample_rate_hz)
    check(1 <= channels <= 32, f"{path}.channels", "must be in 1..32", channels)


class SourceBase:
    """The setup every source shares: name, overflow count, state reporting, close event."""

    kind = ""

    def __init__(self, name: str, on_state: StateCallback | None,
                 backoff: BackoffPolicy | None = None, rng: random.Random | None = None) -> None:
        self.name = name
        self.overflows = 0
        """Audio blocks lost before reaching the pipeline."""
        self.waits_for_consumer = False
        """True when the audio can wait (a file read faster than real time): the pipeline
        then holds each chunk until inference took the pending window (backpressure)."""
        self._reporter = StateReporter(name, on_state)
        self._retrier = Retrier(backoff or BackoffPolicy(), rng)
        self._closed = asyncio.Event()

    async def chunks(self) -> AsyncIterator[np.ndarray]:
        """Mono float32 chunks at 44100 Hz until the source ends or :meth:`close`."""
        await self._prepare()
        self._reporter.report(SourceState.CONNECTING)
        async with contextlib.aclosing(self._produce()) as produced:
            async for samples in produced:
                yield samples
        self._finish()

    async def _prepare(self) -> None:
        """Set-up before "connecting" is reported (default: nothing)."""

    def _produce(self) -> AsyncIterator[np.ndarray]:
        """The kind's chunks."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Report how the source ended (default: "ended", "closed" when closed)."""
        self._reporter.report(SourceState.ENDED, "closed" if self._closed.is_set() else None)


class StateReporter:
    """Deduplicates and logs state changes of one source, then calls its StateCallback."""

    def __init__(self, source_name: str, on_state: StateCallback | None) -> None:
        self._source_name = source_name
        self._on_state = on_state
        self.state: str | None = None
        """Last reported state (None before the first report)."""
        self.message: str | None = None
        """Message of the last reported state."""

    def report(self, state: SourceState, message: str | None = None) -> None:
        """Report ``state``; a repeat of the current state and message is dropped."""
        value = str(state)
        if value == self.state and message == self.message:
            return
        self.state, self.message = value, message
        level = logging.WARNING if state in (SourceState.ERROR, SourceState.RECONNECTING) else (
            logging.INFO)
        _LOGGER.log(level, "source %s: %s%s", self._source_name, value,
                    f" ({message})" if message else "")
        if self._on_state is None:
            return
        try:
            self._on_state(value, message)
        except Exception:
            _LOGGER.exception("state callback of source %s failed", self._source_name)


class Retrier:
    """Counts failed attempts, waits the backoff delay, resets once audio flows steadily."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.attempt = 0
        """Failed attempts since audio last flowed steadily."""
        self._rng = rng or random.Random()
        self._connected_monotonic: float | None = None

    def note_connected(self) -> None:
        """Audio started flowing (again)."""
        self._connected_monotonic = time.monotonic()

    def note_audio(self) -> None:
        """Audio is flowing; reset the attempt count after ``reset_after_seconds`` of it."""
        started = self._connected_monotonic
        if started is not None and time.monotonic() - started >= self.policy.reset_after_seconds:
            self.attempt = 0

    async def wait(self, closed: asyncio.Event) -> bool:
        """Sleep the next backoff delay; False when ``closed`` was set meanwhile."""
        delay_seconds = self.policy.delay_seconds(self.attempt, self._rng)
        self.attempt += 1
        self._connected_monotonic = None
        _LOGGER.debug("retry %d in %.2f s", self.attempt, delay_seconds)
        return not await wait_event(closed, delay_seconds)


async def wait_event(event: asyncio.Event, timeout_seconds: float) -> bool:
    """Wait up to ``timeout_seconds`` for ``event``; True when it is set."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout_seconds)
    except TimeoutError:
        return False
    return True
