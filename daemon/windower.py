"""Rolling 30-s window per source: ring buffer + streaming BFFT, a window every hop."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from daemon.ringbuffer import RingBuffer
from models.frontend import BfftParams, StreamingBfft

_LOGGER = logging.getLogger(__name__)
_MIN_RMS = 1e-12


@dataclass(frozen=True)
class Window:
    """One due window of a source."""

    features: np.ndarray | None
    """The model input (the BFFT image); None when the window is silent."""
    start_sample: int
    """First sample of the window, counted since the source started."""
    end_sample: int
    """One past the last sample of the window."""
    rms_dbfs: float
    """RMS level of the newest hop in dB re full scale."""
    silent: bool
    """True when rms_dbfs is below the silence threshold (no inference)."""


class Windower:
    """Feeds a source's audio to the front-end and yields a window every hop once warm."""

    def __init__(self, params: BfftParams, hop_seconds: float, silence_rms_dbfs: float) -> None:
        self.params = params
        self.hop_bins = max(1, round(hop_seconds / params.bin_seconds))
        self.silence_rms_dbfs = silence_rms_dbfs
        self._frontend = StreamingBfft(params)
        self._ring = RingBuffer(params.window_samples + params.samples_per_bin)
        self._next_due_columns = params.n_time_bins

    @property
    def hop_samples(self) -> int:
        """Samples between consecutive windows."""
        return self.hop_bins * self.params.samples_per_bin

    @property
    def hop_seconds(self) -> float:
        """The hop after rounding to whole time bins, in seconds."""
        return self.hop_samples / self.params.sample_rate_hz

    @property
    def warm(self) -> bool:
        """True once 30 s of audio are buffered."""
        return self._frontend.ready

    @property
    def warm_fraction(self) -> float:
        """Share of the first window buffered so far (0..1)."""
        return min(1.0, self._frontend.n_columns_total / self.params.n_time_bins)

    @property
    def total_samples(self) -> int:
        """Samples received since the source started (the audio clock)."""
        return self._ring.total_samples

    def push(self, chunk: np.ndarray) -> Window | None:
        """Add contract-rate samples; returns the newest due window, if any."""
        self._ring.write(chunk)
        if self._frontend.push(chunk) == 0:
            return None
        n_columns = self._frontend.n_columns_total
        if n_columns < self._next_due_columns:
            return None
        skipped = (n_columns - self._next_due_columns) // self.hop_bins
        if skipped:
            _LOGGER.debug("chunk spanned %d extra hops; only the newest window is kept", skipped)
        self._next_due_columns += (skipped + 1) * self.hop_bins
        return self._window(n_columns)

    def _window(self, n_columns: int) -> Window:
        """Build the window ending at column ``n_columns``."""
        end_sample = n_columns * self.params.samples_per_bin
        start_sample = end_sample - self.params.window_samples
        pending = self._ring.total_samples - end_sample
        newest = self._ring.latest(self.hop_samples + pending)[: self.hop_samples]
        rms = float(np.sqrt(np.mean(np.square(newest, dtype=np.float64))))
        rms_dbfs = 20.0 * math.log10(max(rms, _MIN_RMS) * math.sqrt(2.0))
        silent = rms_dbfs < self.silence_rms_dbfs
        features = None if silent else self._frontend.image()
        return Window(features, start_sample, end_sample, rms_dbfs, silent)
