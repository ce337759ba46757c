"""Fixed-capacity float32 audio ring buffer with an audio clock.

One :class:`RingBuffer` per source holds the newest ``capacity_samples`` mono samples. Writes
copy into a preallocated array (at most two slice assignments, casting to float32 on the
fly), so a write allocates nothing. ``total_samples`` counts every sample
ever written and is the source's audio clock: sample ``i`` of the stream is the one written
when ``total_samples`` went from ``i`` to ``i + 1``.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Newest ``capacity_samples`` float32 samples of one mono stream."""

    def __init__(self, capacity_samples: int) -> None:
        """Allocate a zeroed ring of ``capacity_samples`` float32 samples."""
        if int(capacity_samples) != capacity_samples or capacity_samples <= 0:
            raise ValueError(f"capacity_samples must be a positive int, got {capacity_samples!r}")
        self._capacity_samples = int(capacity_samples)
        self._buffer = np.zeros(self._capacity_samples, dtype=np.float32)
        self._write_index = 0  # position the next sample goes to
        self._total_samples = 0

    @property
    def total_samples(self) -> int:
        """Audio clock: number of samples ever written."""
        return self._total_samples

    @property
    def n_available(self) -> int:
        """Number of samples that can be read back (at most ``capacity_samples``)."""
        return min(self._total_samples, self._capacity_samples)

    def write(self, chunk: np.ndarray) -> None:
        """Append a 1-D chunk of any length; only the newest ``capacity_samples`` are kept."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 1:
            raise ValueError(f"chunk must be 1-D, got shape {chunk.shape}")
        n_samples = chunk.shape[0]
        if n_samples == 0:
            return
        capacity = self._capacity_samples
        kept = chunk[-capacity:] if n_samples > capacity else chunk
        n_kept = kept.shape[0]
        start = (self._write_index + n_samples - n_kept) % capacity
        first = min(n_kept, capacity - start)
        self._buffer[start : start + first] = kept[:first]
        if first < n_kept:
            self._buffer[: n_kept - first] = kept[first:]
        self._write_index = (start + n_kept) % capacity
        self._total_samples += n_samples

    def latest(self, n_samples: int) -> np.ndarray:
        """Copy of the newest ``n_samples`` samples, oldest first."""
        self._check_request(n_samples)
        out = np.empty(n_samples, dtype=np.float32)
        start = (self._write_index - n_samples) % self._capacity_samples
        first = min(n_samples, self._capacity_samples - start)
        out[:first] = self._buffer[start : start + first]
        out[first:] = self._buffer[: n_samples - first]
        return out

    def _check_request(self, n_samples: int) -> None:
        if int(n_samples) != n_samples or n_samples < 0:
            raise ValueError(f"n_samples must be a non-negative int, got {n_samples!r}")
        if n_samples > self.n_available:
            raise ValueError(
                f"requested {n_samples} samples but only {self.n_available} available "
                f"(capacity {self._capacity_samples})"
            )
