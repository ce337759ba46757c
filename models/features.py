"""Feature extractors: what the daemon computes from a source's audio for each model kind.

Every extractor sees the same 44.1 kHz mono stream, cut into time bins of
``bin_samples``; a window is the newest ``window_samples``. The BFFT extractor computes
one image column per bin as audio arrives; others compute from the window's samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from models.bfft import BfftParams, StreamingBfft, bfft_image
from models.registry import FRONTENDS


class FeatureExtractor(Protocol):
    """Turns a source's audio into one model input per window."""

    window_samples: int
    bin_samples: int

    def push(self, samples: np.ndarray) -> None:
        """See new 44.1 kHz samples (streaming extractors work here)."""

    def features(self, window_samples: Callable[[], np.ndarray]) -> np.ndarray:
        """Model input for the window that just ended (``window_samples()`` gives its audio)."""

    def offline(self, window_audio: np.ndarray) -> np.ndarray:
        """Model input for one window of audio, without streaming state."""


class BfftExtractor:
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
