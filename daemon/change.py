"""Early genre changes from a window's per-patch scores (patch-head models), before smoothing.

A 30-s window follows new music only once most of its patches hold it. A patch-head model's
result also carries the window's per-patch scores (``WindowResult.patch_scores``: logits /
temperature, oldest patch first; models/patch_serving.py), so this stage sees the newest
patches on their own: when the newest
``change_patches`` patches each lead with the same genre, their pooled probability of it is at
least ``change_probability`` and it is not the current label, the music changed. Then the
smoother restarts (the label moves at once) and, until the window holds only patches from
after the change, the probabilities smoothed are the model's pooling over those patches only
(softmax of their mean score); afterwards the window's own. Within a song the window's
pooling keeps the label steady. Pure numpy, no asyncio; the smoother stays model-agnostic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from daemon.schema import check

_LOGGER = logging.getLogger(__name__)

MAX_CHANGE_PATCHES = 10
"""A window's patches (the most the detector can ask to agree)."""


@dataclass(frozen=True)
class ChangeConfig:
    """The change detector's settings (YAML keys under ``smoothing:``)."""

    change_patches: int = 2
    """Patch-head models: when this many newest 3-s patches all lead with a genre other than
    the label (0: never)..."""
    change_probability: float = 0.9
    """...and their pooled probability of it is at least this, the label moves at once."""

    def validate(self, path: str = "smoothing") -> None:
        """Range checks (ConfigError naming the key path)."""
        check(0 <= self.change_patches <= MAX_CHANGE_PATCHES, f"{path}.change_patches",
              f"must be in 0..{MAX_CHANGE_PATCHES}", self.change_patches)
        check(0 <= self.change_probability <= 1, f"{path}.change_probability",
              "must be in [0, 1]", self.change_probability)


def pooled_probabilities(scores: np.ndarray) -> np.ndarray:
    """softmax(mean of patch scores): the model's window pooling over the given patches."""
    mean = np.asarray(scores, dtype=np.float64).mean(axis=0)
    exp = np.exp(mean - mean.max())
    return exp / exp.sum()


class ChangeDetector:
    """Per source: detects a genre change in the newest patches and re-pools after it."""

    def __init__(self, n_labels: int, n_patches: int, step_samples: float,
                 change_patches: int = 2, change_probability: float = 0.9) -> None:
        if not 1 <= change_patches <= n_patches:
            raise ValueError(f"change_patches must be in 1..{n_patches}, got {change_patches}")
        self.n_labels = int(n_labels)
        """Genre columns (a model's no-music column, if any, is never a genre)."""
        self.n_patches = int(n_patches)
        self.step_samples = float(step_samples)
        """Samples per patch (2.992 s x 44.1 kHz), to place windows on the patch grid."""
        self.change_patches = int(change_patches)
        self.change_probability = float(change_probability)
        self.changes_detected = 0
        self._since: int | None = None
        """Grid index of the first patch after the newest detected change (None: none)."""
        self._genre = -1
        """The genre of that change."""

    def reset(self) -> None:
        """Forget a pending change (after silence, no music or a reconnect)."""
        self._since = None

    def update(self, outputs: np.ndarray, scores: np.ndarray, end_sample: int,
               label_index: int | None) -> tuple[np.ndarray, bool]:
        """(outputs to smooth, changed now) of a window's outputs and its patch scores."""
        outputs = np.asarray(outputs, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (self.n_patches, outputs.shape[0]):
            raise ValueError(f"patch scores of shape {scores.shape}; expected "
                             f"({self.n_patches}, {outputs.shape[0]})")
        last = round(end_sample / self.step_samples) - 1
        """Grid index of the window's newest patch."""
        changed = label_index is not None and self._detect(scores, last, label_index)
        if self._since is None or last - self._since + 1 >= self.n_patches:
            self._since = None
            return outputs, changed
        recent = scores[self._since - last - 1:]
        return pooled_probabilities(recent).astype(np.float32), changed

    def _detect(self, scores: np.ndarray, last: int, label_index: int) -> bool:
        """True (and the change point kept) when the newest patches agree on a new genre."""
        recent = scores[-self.change_patches:]
        leaders = np.argmax(recent, axis=1)
        genre = int(leaders[0])
        if genre >= self.n_labels or genre == label_index or np.any(leaders != genre):
            return False
        since = last - self.change_patches + 1
        if self._since is not None and (since <= self._since or genre == self._genre):
            return False  # the change being followed
        if pooled_probabilities(recent)[genre] < self.change_probability:
            return False
        _LOGGER.debug("genre change to %d detected in patches %d..%d", genre, since, last)
        self._since, self._genre = since, genre
        self.changes_detected += 1
        return True


def change_detector(config: ChangeConfig, n_labels: int, n_patches: int,
                    patch_step_samples: float | None) -> ChangeDetector | None:
    """A source's detector when the model's results carry patch scores and config asks."""
    if patch_step_samples is None or not config.change_patches:
        return None
    return ChangeDetector(n_labels, n_patches, patch_step_samples,
                          min(config.change_patches, n_patches), config.change_probability)
