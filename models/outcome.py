"""What a window is: a genre, "no music" (speech, noise, animals) or silence.

A model whose contract declares ``head.no_music_output`` has one more output column than
labels: the probability that the window holds no music. Genre probabilities are then
renormalised over the labels, so a client always gets a distribution over genres.
"""

from __future__ import annotations

import numpy as np

NO_MUSIC_THRESHOLD = 0.5
"""A window whose no-music probability reaches this is reported as no music."""
SILENCE_RMS_DBFS = -50.0
"""Default level below which a window is silent (the daemon's silence_rms_dbfs default).
Not lower: below about -50 dBFS the shipped model calls most music "no music" (a GTZAN
classical clip 30 dB down, -58 dBFS: p(no music) 0.87), and "silent" is the truer word."""


def split_outputs(outputs: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(genre probabilities (N, n_labels) summing to 1, no-music probability (N,))."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.shape[1] == n_labels:
        return outputs, np.zeros(outputs.shape[0], dtype=np.float32)
    if outputs.shape[1] != n_labels + 1:
        raise ValueError(f"model gave {outputs.shape[1]} outputs for {n_labels} labels")
    genres = outputs[:, :n_labels]
    totals = np.maximum(genres.sum(axis=1, keepdims=True), 1e-12)
    return genres / totals, outputs[:, n_labels]


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB re full scale (-inf-safe: at most -200)."""
    power = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(10.0 * np.log10(power + 1e-20), -200.0)
