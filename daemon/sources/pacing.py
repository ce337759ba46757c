"""RealtimePacer: holds a faster-than-real-time producer (a decoded file) to the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_LAG_SECONDS = 1.0
"""A consumer this far behind the clock re-anchors instead of bursting to catch up."""


class RealtimePacer:
    """Says how long to wait before handing on each chunk so audio time follows wall time.

    The first chunk is due at once; each later chunk is due when the audio before it has
    "played" (anchor + samples delivered / rate). The clock runs across producer restarts,
    so a looped file stays in step with the wall clock. A consumer that fell more than
    ``max_lag_seconds`` behind (a stalled loop) re-anchors rather than delivering a burst.
    """

    def __init__(self, sample_rate_hz: int, max_lag_seconds: float = MAX_LAG_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
        self.sample_rate_hz = sample_rate_hz
        self.max_lag_seconds = max_lag_seconds
        self._clock = clock
        self._anchor_seconds: float | None = None
        self._n_samples = 0
        self.reanchors = 0
        """Times the consumer fell behind by more than max_lag_seconds and re-anchored."""

    def delay_seconds(self, n_samples: int) -> float:
        """Seconds to wait before delivering the next chunk of ``n_samples`` samples."""
        now = self._clock()
        if self._anchor_seconds is None:
            self._anchor_seconds = now
        due = self._anchor_seconds + self._n_samples / self.sample_rate_hz
        if now - due > self.max_lag_seconds:
            self.reanchors += 1
            self._anchor_seconds, self._n_samples, due = now, 0, now
        self._n_samples += n_samples
        return max(0.0, due - now)
