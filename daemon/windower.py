"""Rolling 30-s window per source: ring buffer + feature extractor, a window every hop."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from daemon.ringbuffer import RingBuffer
from models.features import FeatureExtractor

_LOGGER = logging.getLogger(__name__)
_MIN_RMS = 1e-12


@dataclass(frozen=True)
class Window:
    """One due window of a source."""

    features: np.ndarray | None
    """The model input (e.g. the BFFT image); None when the window is silent."""
    start_sample: int
    """First sample of the window, counted since the source started."""
    end_sample: int
    """One past the last sample of the window."""
    rms_dbfs: float
    """RMS level of the newest hop in dB re full scale (a full-scale sine is 0 dBFS)."""
    silent: bool
    """True when rms_dbfs is below the silence threshold (no inference)."""


class Windower:
    """Feeds a source's audio to its extractor and yields a window every hop once warm."""

    def __init__(self, extractor: FeatureExtractor, sample_rate_hz: int, hop_seconds: float,
                 silence_rms_dbfs: float) -> None:
        self.extractor = extractor
        self.sample_rate_hz = sample_rate_hz
        self.bin_samples = extractor.bin_samples
        self.window_samples = extractor.window_samples
        self.hop_bins = max(1, round(hop_seconds * sample_rate_hz / self.bin_samples))
        self.silence_rms_dbfs = silence_rms_dbfs
        self._ring = RingBuffer(self.window_samples + self.bin_samples)
        self._window_bins = math.ceil(self.window_samples / self.bin_samples)
        self._next_due_bins = self._window_bins

    @property
    def hop_samples(self) -> int:
        """Samples between consecutive windows."""
        return self.hop_bins * self.bin_samples

    @property
    def hop_seconds(self) -> float:
        """The hop after rounding to whole time bins, in seconds."""
        return self.hop_samples / self.sample_rate_hz

    @property
    def total_samples(self) -> int:
        """Samples received since the source started (the audio clock)."""
        return self._ring.total_samples

    @property
    def warm(self) -> bool:
        """True once a whole window of audio is buffered."""
        return self._ring.total_samples >= self._window_bins * self.bin_samples

    @property
    def warm_fraction(self) -> float:
        """Share of the first window buffered so far (0..1)."""
        return min(1.0, self._ring.total_samples / (self._window_bins * self.bin_samples))

    def push(self, chunk: np.ndarray) -> Window | None:
        """Add contract-rate samples; returns the newest due window, if any."""
        self._ring.write(chunk)
        self.extractor.push(chunk)
        n_bins = self._ring.total_samples // self.bin_samples
        if n_bins < self._next_due_bins:
            return None
        skipped = (n_bins - self._next_due_bins) // self.hop_bins
        if skipped:
            _LOGGER.debug("chunk spanned %d extra hops; only the newest window is kept", skipped)
        self._next_due_bins += (skipped + 1) * self.hop_bins
        return self._window(n_bins * self.bin_samples)

    def _window(self, end_sample: int) -> Window:
        """Build the window ending at ``end_sample``."""
        pending = self._ring.total_samples - end_sample

        def window_audio() -> np.ndarray:
            return self._ring.latest(self.window_samples + pending)[: self.window_samples]

        newest = self._ring.latest(self.hop_samples + pending)[: self.hop_samples]
        rms = float(np.sqrt(np.mean(np.square(newest, dtype=np.float64))))
        rms_dbfs = 20.0 * math.log10(max(rms, _MIN_RMS) * math.sqrt(2.0))
        silent = rms_dbfs < self.silence_rms_dbfs
        features = None if silent else self.extractor.features(window_audio)
        return Window(features, end_sample - self.window_samples, end_sample, rms_dbfs, silent)

