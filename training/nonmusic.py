"""Synthetic non-music for the "no music" outcome: silence, hiss, hum and noise colours.

The recorded non-music in ../shared/data/nonmusic (speech, a bird, a whale) is a few
minutes; these signals add what a listening machine hears between songs or when nothing
plays: digital silence, a quiet line-in floor, mains hum, fan/wind-like noise.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SYNTHETIC_KINDS = ("silence", "floor", "white", "pink", "brown", "hum50", "hum60", "crackle")


def synthetic_nonmusic(kind: str, n_samples: int, sample_rate_hz: int,
                       rng: np.random.Generator) -> np.ndarray:
    """One signal of ``kind`` (see SYNTHETIC_KINDS), mono float32, random level."""
    level = 10 ** (rng.uniform(-50.0, -10.0) / 20)
    white = rng.standard_normal(n_samples)
    if kind == "silence":
        return np.zeros(n_samples, dtype=np.float32)
    if kind == "floor":
        signal = white * 10 ** (rng.uniform(-90.0, -60.0) / 20)
        return signal.astype(np.float32)
    if kind == "white":
        signal = white
    elif kind == "pink":
        signal = scipy.signal.lfilter([1.0], [1.0, -0.95], white)
    elif kind == "brown":
        signal = scipy.signal.lfilter([1.0], [1.0, -0.999], white)
    elif kind in ("hum50", "hum60"):
        t = np.arange(n_samples) / sample_rate_hz
        base_hz = 50.0 if kind == "hum50" else 60.0
        signal = sum(np.sin(2 * np.pi * base_hz * k * t) / k for k in (1, 2, 3, 5))
        signal = signal + 0.05 * white
    elif kind == "crackle":
        signal = white * (rng.random(n_samples) < 0.001) * 20 + 0.1 * white
    else:
        raise ValueError(f"unknown synthetic non-music {kind!r}; known: {SYNTHETIC_KINDS}")
    signal = signal / (np.sqrt(np.mean(signal**2)) + 1e-12) * level
    return np.clip(signal, -1.0, 1.0).astype(np.float32)
