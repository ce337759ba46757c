"""Slicing rules shared by ``dataset build`` and ``classify``: which 30-s windows of a song.

* a song of at least 90 s loses its first and last 30 s (intro and outro), then is cut
  into consecutive windows; a shorter song is cut from its start;
* a last piece shorter than a window is dropped;
* a file of 29 s up to one window is zero-padded to one window; a shorter file is too short
  (``classify`` takes it with ``allow_short`` and loops it to one window: ``loop_to_window``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.bfft import DEFAULT_PARAMS

SKIP_MIN_SONG_SECONDS = 90.0
SKIP_EDGE_SECONDS = 30.0
MIN_PAD_SECONDS = 29.0
AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".mp3", ".ogg", ".m4a", ".aiff", ".aif")


@dataclass(frozen=True)
class SlicePlan:
    """Start samples of the windows to cut from a song, and how it was treated."""

    starts: tuple[int, ...]
    """Start sample of each window (at the contract sample rate)."""
    padded: bool = False
    """True when the song is shorter than a window and is zero-padded to one."""
    too_short: bool = False
    """True when the song is under MIN_PAD_SECONDS and yields no window."""
    skipped_edges: bool = False
    """True when the intro and outro were skipped (song >= 90 s)."""


def plan_slices(
    n_samples: int,
    sample_rate_hz: int = DEFAULT_PARAMS.sample_rate_hz,
    window_samples: int = DEFAULT_PARAMS.window_samples,
    hop_samples: int | None = None,
    allow_short: bool = False,
) -> SlicePlan:
    """Windows to cut from a song of ``n_samples`` samples (pure function of the rules)."""
    hop_samples = window_samples if hop_samples is None else hop_samples
    if hop_samples <= 0 or window_samples <= 0:
        raise ValueError(f"window and hop must be positive, got {window_samples}, {hop_samples}")
    if n_samples < window_samples:
        if n_samples >= MIN_PAD_SECONDS * sample_rate_hz or (allow_short and n_samples > 0):
            return SlicePlan(starts=(0,), padded=True)
        return SlicePlan(starts=(), too_short=True)
    first, end = 0, n_samples
    edge_samples = round(SKIP_EDGE_SECONDS * sample_rate_hz)
    skipped = n_samples >= SKIP_MIN_SONG_SECONDS * sample_rate_hz
    if skipped:
        first, end = edge_samples, n_samples - edge_samples
    starts = tuple(range(first, end - window_samples + 1, hop_samples))
    return SlicePlan(starts=starts, skipped_edges=skipped)


def loop_to_window(samples: np.ndarray, window_samples: int) -> np.ndarray:
    """A file shorter than a window, repeated end to end to fill it: every patch of the
    window then holds audio, so the pooled verdict is the music's, not the padding's."""
    if samples.size == 0 or samples.size >= window_samples:
        return samples[:window_samples]
    return np.resize(samples, window_samples).astype(samples.dtype, copy=False)


def source_stem(name: str) -> str:
    """File name without folder and without a known audio extension ('blues.00000')."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    for extension in AUDIO_EXTENSIONS:
        if base.lower().endswith(extension):
            return base[: -len(extension)]
    return base
