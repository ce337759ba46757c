"""Feature extractors: what the daemon computes from a source's audio for each model kind.

Every extractor sees the same 44.1 kHz mono stream and lays a grid of steps on it: whole time
bins of ``bin_samples`` (:class:`BinGrid`: the BFFT image, the per-window musicnn patches) or
the musicnn patch grid (models/patch_serving.py). A window is the newest ``window_steps``
steps; windows are due on step boundaries, so a hop is rounded to whole steps. The BFFT
extractor computes one image column per bin as audio arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from models.bfft import BfftParams, StreamingBfft, bfft_image
from models.registry import FRONTENDS
from models.resample import SAMPLE_RATE_HZ


class FeatureExtractor(Protocol):
    """Turns a source's audio into one model input per window."""

    window_samples: int
    window_steps: int
    """Steps per window."""
    audio_samples: int
    """Newest samples :meth:`features` may read through its callable (0: none)."""

    def push(self, samples: np.ndarray) -> None:
        """See new 44.1 kHz samples (streaming extractors work here)."""

    def steps_done(self, total_samples: int) -> int:
        """Whole steps completed once ``total_samples`` samples have been pushed."""

    def step_end_sample(self, n_steps: int) -> int:
        """Sample count at which the first ``n_steps`` steps' own audio ends."""

    def hop_steps(self, hop_seconds: float) -> int:
        """A hop in whole steps (>= 1)."""

    def features(self, window_samples: Callable[[], np.ndarray]) -> Any:
        """Model input for the window that just ended (``window_samples()`` gives its audio)."""

    def offline(self, window_audio: np.ndarray) -> np.ndarray:
        """Model input for one window of audio, without streaming state."""

    def pending_work(self) -> Any:
        """Work the model can do before the next window is due (new patches), or None."""


class BinGrid:
    """Steps of whole time bins of ``bin_samples``; the window is ``window_samples``."""

    window_samples: int
    bin_samples: int

    @property
    def window_steps(self) -> int:
        """Bins per window (rounded up)."""
        return -(-self.window_samples // self.bin_samples)

    @property
    def audio_samples(self) -> int:
        """The window's audio (extractors computing from it read it back)."""
        return self.window_samples

    def steps_done(self, total_samples: int) -> int:
        """Whole bins in ``total_samples``."""
        return total_samples // self.bin_samples

    def step_end_sample(self, n_steps: int) -> int:
        """End of bin ``n_steps - 1``."""
        return n_steps * self.bin_samples

    def hop_steps(self, hop_seconds: float) -> int:
        """A hop rounded to whole bins (2 s -> 15 bins = 2.009 s for the BFFT)."""
        return max(1, round(hop_seconds * SAMPLE_RATE_HZ / self.bin_samples))

    def pending_work(self) -> None:
        """None: a window's input needs no work ahead of the window."""
        return None


class BfftExtractor(BinGrid):
    """The report's BFFT image, computed column by column as audio arrives."""

    def __init__(self, params: BfftParams) -> None:
        self.params = params
        self.window_samples = params.window_samples
        self.bin_samples = params.samples_per_bin
        self._streaming = StreamingBfft(params)

    def push(self, samples: np.ndarray) -> None:
        """Compute the columns the new samples complete."""
        self._streaming.push(samples)

    def features(self, window_samples: Callable[[], np.ndarray]) -> np.ndarray:
        """The current 224x224x3 image (no recomputation of old columns)."""
        return self._streaming.image()

    def columns_db(self) -> np.ndarray:
        """The newest window's dB columns (n_time_bins, n_rows), a copy: the image uncoloured."""
        return self._streaming.columns_db()

    def offline(self, window_audio: np.ndarray) -> np.ndarray:
        """The image of one window of contract-rate audio (whole-song classification)."""
        return bfft_image(window_audio, self.params.sample_rate_hz, self.params)


def bfft_extractor(params: dict[str, Any]) -> BfftExtractor:
    """The BFFT extractor for a contract's front-end parameters."""
    return BfftExtractor(BfftParams(**params))


def make_extractor(frontend_name: str, params: dict[str, Any]) -> FeatureExtractor:
    """A fresh extractor (one per source) for a contract's front-end."""
    if frontend_name not in FRONTENDS:
        raise KeyError(f"no feature extractor for front-end {frontend_name!r}")
    return FRONTENDS[frontend_name].make_extractor(params)
