"""What a window is: a genre, "no music" (speech, noise, animals) or silence.

A model whose contract declares ``head.no_music_output`` has one more output column than
labels: the probability that the window holds no music. Genre probabilities are then
renormalised over the labels, so a client always gets a distribution over genres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_MUSIC_THRESHOLD = 0.5
"""A window whose no-music probability reaches this is reported as no music."""
SILENCE_RMS_DBFS = -60.0
"""Default level below which a window is silent (the daemon's silence_rms_dbfs default).
-60, not lower: the musicnn front-end lifts quiet patches by at most 30 dB
(models.musicnn.melspec.lift_quiet), so music down to about -60 dBFS (a GTZAN classical clip
30 dB down is -58 dBFS) keeps its genre; below that "silent" is the truer word. Before the
lift (front-end version 1) the gate was -50: the model called most quieter music no music."""


@dataclass(frozen=True)
class WindowResult:
    """What serving gives for one window; the inference worker passes it on untouched."""

    outputs: np.ndarray
    """The model's outputs (n_outputs,): label probabilities, then no-music where declared."""
    patch_scores: np.ndarray | None = None
    """Per-patch scores (n_patches, n_outputs), oldest first (patch-head models), else None
    (also when overload shedding left the window fewer patches to pool)."""
    stale: bool = False
    """The window's inputs left the cache before inference (it is dropped, not published)."""

    @classmethod
    def gone_stale(cls, n_outputs: int) -> WindowResult:
        """The result of a window whose inputs were dropped."""
        return cls(np.full(n_outputs, np.nan, np.float32), None, stale=True)


def results_from_rows(rows: np.ndarray) -> list[WindowResult]:
    """Results of a plain model's output rows (N, n_outputs); an all-NaN row is stale."""
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"model outputs have shape {rows.shape}; expected (N, n_outputs)")
    return [WindowResult(row.astype(np.float32), None, bool(np.isnan(row).all()))
            for row in rows]


def check_results(results: Sequence[WindowResult], n_windows: int) -> list[WindowResult]:
    """The results of a batch, one per window (ValueError otherwise)."""
    results = list(results)
    if len(results) != n_windows or not all(isinstance(r, WindowResult) for r in results):
        raise ValueError(f"serving gave {len(results)} results for a batch of {n_windows} "
                         f"windows; expected one WindowResult per window")
    return results


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
