"""Phase spreading: real-time sources' windows fall due at different moments of the hop.

Sources that start together (a daemon with 120 streams starts them all within a second or
two) would otherwise have their windows fall due together, every hop: the inference thread
then gets a burst of N windows at once and the last of them waits most of a hop for its
batch (measured: 2.3 s of a 2.99-s hop at 120 sources with the thread 77 % busy), so a
passing stall drops windows although the thread has time to spare over the hop.

:class:`PhaseSpreader` leaves out the first moments of each real-time source's audio (less
than one hop, once, at its start) so that its windows fall due at its own place in the hop:
the k-th source started gets the phase ``frac(k * golden ratio) * hop`` of the monotonic
clock, an even spread for any number of sources. The model then sees the audio from there
on; nothing else changes (the audio clock of the source starts at the first sample kept).
Only when the sources cannot share one batch (more than ``max_batch_size`` of them);
sources that wait for the consumer (files read faster than real time) are never trimmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

_LOGGER = logging.getLogger(__name__)

GOLDEN_FRACTION = 0.6180339887498949
"""Successive multiples of it, modulo 1, fill [0, 1) evenly (a low-discrepancy sequence)."""


class PhaseSpreader:
    """Trims the start of each real-time source so its windows fall due at its own phase."""

    def __init__(self, hop_seconds: float, sample_rate_hz: int, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if hop_seconds <= 0 or sample_rate_hz <= 0:
            raise ValueError(f"need hop_seconds > 0 and sample_rate_hz > 0, got "
                             f"{hop_seconds}, {sample_rate_hz}")
        self.hop_seconds = float(hop_seconds)
        self.sample_rate_hz = int(sample_rate_hz)
        self.enabled = enabled
        """False: every chunk passes untouched (few sources: one batch holds them all)."""
        self._clock = clock
        self._n_started = 0
        self._left: dict[str, int] = {}
        """Per source: samples still to leave out (0 once its phase is set)."""

    def trim(self, source: str, chunk: np.ndarray) -> np.ndarray:
        """``chunk`` without the samples of ``source`` still to leave out (may be empty)."""
        left = self._left.get(source)
        if left is None:
            left = self._left[source] = self._first_skip_samples(source) if self.enabled else 0
        if left == 0:
            return chunk
        n_samples = min(left, chunk.shape[0])
        self._left[source] = left - n_samples
        return chunk[n_samples:]

    def _first_skip_samples(self, source: str) -> int:
        """Samples to leave out so the source's windows fall due at the next free phase."""
        target_seconds = (self._n_started * GOLDEN_FRACTION) % 1.0 * self.hop_seconds
        self._n_started += 1
        skip_seconds = (target_seconds - self._clock()) % self.hop_seconds
        _LOGGER.debug("source %s: first %.2f s left out (phase %.2f s of the hop)", source,
                      skip_seconds, target_seconds)
        return int(round(skip_seconds * self.sample_rate_hz))
