"""What every audio source shares: states, the Source protocol, backoff and state reporting."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_LOGGER = logging.getLogger(__name__)

StateCallback = Callable[[str, str | None], None]
"""Called with (state, message) whenever a source's state changes."""


class SourceState(enum.StrEnum):
    """Source states; a source reports connecting/live/reconnecting/ended/error itself."""

    CONNECTING = "connecting"
    WARMING_UP = "warming_up"
    LIVE = "live"
    SILENT = "silent"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    ERROR = "error"


class SourceConfigError(Exception):
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
    """Exponential reconnect delays with proportional jitter.

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

    def delay_seconds(self, attempt: int, rng: random.Random | np.random.Generator) -> float:
        """Delay in seconds before retry ``attempt`` (0-based); ``rng.random()`` is in [0, 1)."""
        exponent = min(max(attempt, 0), 64)
        base = min(self.max_seconds, self.initial_seconds * self.multiplier**exponent)
        factor = 1.0 + self.jitter_fraction * (2.0 * float(rng.random()) - 1.0)
        return max(0.0, base * factor)


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
        value = state.value
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
