"""musicnn (MTG-UPF, ISC licence) ported to Keras 3: a music-pretrained embedding for genred.

* :func:`musicnn_patches` (numpy/scipy only): 16 kHz mono audio -> (N, 187, 96) log-mel patches;
* :func:`load_musicnn` (Keras, imported lazily): the network with converted weights, mapping
  patches to ``{"tags", "penultimate", "max_pool", "mean_pool"}``.

See README.md beside this file for provenance, conversion and verification.
"""

from __future__ import annotations

from typing import Any

from models.musicnn.melspec import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE_HZ,
    log_mel,
    mel_filterbank,
    musicnn_patches,
    patches_from_log_mel,
)

_LAZY = {"load_musicnn", "build_musicnn", "CHECKPOINTS", "OUTPUTS", "EMBEDDING_DIMS"}

__all__ = [
    "HOP_LENGTH", "N_FFT", "N_MELS", "PATCH_FRAMES", "SAMPLE_RATE_HZ", "log_mel",
    "mel_filterbank", "musicnn_patches", "patches_from_log_mel", *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    """Import the Keras half only when it is used (the front-end needs no TensorFlow)."""
    if name in _LAZY:
        from models.musicnn import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
