"""The musicnn-mel feature extractor: a 30-s window -> 10 log-mel patches (no Keras)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.features import BinGrid
from models.musicnn.melspec import musicnn_patches
from models.musicnn.spec import INPUT_SHAPE, PARAMS
from models.resample import resample


def window_patches(window_audio: np.ndarray, params: dict = PARAMS) -> np.ndarray:
    """44.1 kHz mono window -> (n_patches, 187, 96) float32 (zero-padded if short)."""
    audio = np.asarray(window_audio, dtype=np.float32)[: params["window_samples"]]
    audio = np.pad(audio, (0, params["window_samples"] - audio.shape[0]))
    audio_16k = resample(audio, params["input_rate_hz"], params["sample_rate_hz"])
    patches = musicnn_patches(audio_16k, pad_mode=params["pad_mode"])[: params["n_patches"]]
    missing = params["n_patches"] - patches.shape[0]
    if missing > 0:
        patches = np.concatenate([patches, np.zeros((missing, *INPUT_SHAPE[1:]), np.float32)])
    return patches


class MusicnnExtractor(BinGrid):
    """Computes the window's patches from its audio when a window is due (offline classify;
    the daemon streams patch-head models with models/patch_serving.py)."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.window_samples = int(params["window_samples"])
        self.bin_samples = int(params["bin_samples"])

    def push(self, samples: np.ndarray) -> None:
        """Nothing to do per chunk: the mel spectrogram is computed per window."""

    def features(self, window_samples: Callable[[], np.ndarray]) -> np.ndarray:
        """(n_patches, 187, 96) log-mel patches of the window."""
        return window_patches(window_samples(), self.params)

    def offline(self, window_audio: np.ndarray) -> np.ndarray:
        """Features of one window of 44.1 kHz audio."""
        return window_patches(window_audio, self.params)
