"""Rolling 30-s window per source: feature extractor + recent audio, a window every hop."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from daemon.ringbuffer import RingBuffer
from models.features import FeatureExtractor

_LOGGER = logging.getLogger(__name__)
_MIN_RMS = 1e-12


@dataclass(frozen=True)
class Window:
    """One due window of a source."""

    features: Any
    """The model input (the BFFT image, or a reference to a source's patch cache); None when
    the window is silent."""
    start_sample: int
    """First sample of the window, counted since the source started."""
    end_sample: int
    """One past the last sample of the window."""
    rms_dbfs: float
    """RMS level of the newest hop in dB re full scale (a full-scale sine is 0 dBFS)."""
    silent: bool
    """True when rms_dbfs is below the silence threshold (no inference)."""


class Windower:
    """Feeds a source's audio to its extractor and yields a window every hop once warm.

    Windows end on the extractor's steps (BFFT: 0.134-s time bins; musicnn patch models:
    2.992-s patches), so the hop is rounded to whole steps.
    """

    def __init__(self, extractor: FeatureExtractor, sample_rate_hz: int, hop_seconds: float,
                 silence_rms_dbfs: float) -> None:
        self.extractor = extractor
        self.sample_rate_hz = sample_rate_hz
        self.hop_bins = extractor.hop_steps(hop_seconds)
        """The hop in the extractor's steps (time bins or patches)."""
        self.silence_rms_dbfs = silence_rms_dbfs
        self._window_bins = extractor.window_steps
        step_samples = extractor.step_end_sample(1)
        self._ring = RingBuffer(max(extractor.audio_samples, self.hop_samples) + 2 * step_samples)
        self._next_due_bins = self._window_bins
        self.n_silent_windows = 0
        """Windows below the silence level (never classified) since the source started."""

    @property
    def hop_samples(self) -> int:
        """Samples between consecutive windows (the first hop's, for a fractional step)."""
        return self.extractor.step_end_sample(self.hop_bins)

    @property
    def hop_seconds(self) -> float:
        """The hop after rounding to whole steps, in seconds."""
        return self.hop_samples / self.sample_rate_hz

    @property
    def total_samples(self) -> int:
        """Samples received since the source started (the audio clock)."""
        return self._ring.total_samples

    @property
    def warm(self) -> bool:
        """True once a whole window has been computed."""
        return self.extractor.steps_done(self._ring.total_samples) >= self._window_bins

    @property
    def warm_fraction(self) -> float:
        """Share of the first window buffered so far (0..1)."""
        first_window_samples = self.extractor.step_end_sample(self._window_bins)
        return min(1.0, self._ring.total_samples / first_window_samples)

    def pending_work(self) -> Any:
        """The extractor's work ahead of the next window (new patches to encode), or None."""
        return self.extractor.pending_work()

    def push(self, chunk: np.ndarray) -> Window | None:
        """Add contract-rate samples; returns the newest due window, if any."""
        self._ring.write(chunk)
        self.extractor.push(chunk)
        n_bins = self.extractor.steps_done(self._ring.total_samples)
        if n_bins < self._next_due_bins:
            return None
        skipped = (n_bins - self._next_due_bins) // self.hop_bins
        if skipped:
            _LOGGER.debug("chunk spanned %d extra hops; only the newest window is kept", skipped)
        self._next_due_bins += (skipped + 1) * self.hop_bins
        return self._window(n_bins)

    def _window(self, n_steps: int) -> Window:
        """Build the window of the newest ``window_steps`` of ``n_steps`` steps."""
        end_sample = self.extractor.step_end_sample(n_steps)
        start_sample = self.extractor.step_end_sample(n_steps - self._window_bins)
        pending = self._ring.total_samples - end_sample
        window_samples = end_sample - start_sample

        def window_audio() -> np.ndarray:
            return self._ring.latest(window_samples + pending)[:window_samples]

        hop_samples = end_sample - self.extractor.step_end_sample(n_steps - self.hop_bins)
        newest = self._ring.latest(hop_samples + pending)[:hop_samples]
        rms = float(np.sqrt(np.mean(np.square(newest, dtype=np.float64))))
        rms_dbfs = 20.0 * math.log10(max(rms, _MIN_RMS) * math.sqrt(2.0))
        silent = rms_dbfs < self.silence_rms_dbfs
        self.n_silent_windows += silent
        features = None if silent else self.extractor.features(window_audio)
        return Window(features, start_sample, end_sample, rms_dbfs, silent)
