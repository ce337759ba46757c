"""Per source: a window's result -> "no music", or its genre probabilities raw and smoothed.

The window's outputs are split into genres and the no-music probability (models/outcome.py);
a no-music window restarts smoothing and publishes no genre. A result with patch scores goes
through the source's change detector (daemon/change.py) first, which may restart the
smoother and choose what is smoothed; the smoother (daemon/smoother.py) holds the label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from daemon.change import ChangeConfig, ChangeDetector, change_detector
from daemon.messages import Prediction
from daemon.smoother import SmoothedResult, Smoother, SmoothingConfig
from models.outcome import NO_MUSIC_THRESHOLD, WindowResult, split_outputs


@dataclass(frozen=True)
class Verdict:
    """What one window says: no music, or genres (raw and smoothed)."""

    no_music: bool
    raw: np.ndarray | None = None
    """The window's genre probabilities (n_labels,), None for no music."""
    smoothed: SmoothedResult | None = None
    """The smoothed label and probabilities, None for no music."""


class WindowJudge:
    """One source's smoother and change detector, fed one window result at a time."""

    def __init__(self, n_labels: int, smoothing: SmoothingConfig, change: ChangeConfig,
                 patch_step_samples: float | None) -> None:
        self.n_labels = int(n_labels)
        self.smoother = Smoother(self.n_labels, smoothing)
        self.change_config = change
        self.patch_step_samples = patch_step_samples
        """Samples per patch when results carry patch scores (None: no detector)."""
        self.change: ChangeDetector | None = None
        """Made at the first result with patch scores, when the config asks for one."""

    def reset(self) -> None:
        """Forget the smoothed state and any pending change (silence, no music, reconnect)."""
        self.smoother.reset()
        if self.change is not None:
            self.change.reset()

    def judge(self, result: WindowResult, end_sample: int) -> Verdict:
        """The verdict on one window whose audio ends at ``end_sample``."""
        genres, no_music = split_outputs(result.outputs[np.newaxis], self.n_labels)
        if no_music[0] >= NO_MUSIC_THRESHOLD:
            self.reset()
            return Verdict(no_music=True)
        to_smooth, moved = self._follow_change(result, end_sample)
        if moved:
            self.smoother.reset()  # a genre change in the newest patches: follow it now
        smoothed = self.smoother.update(split_outputs(to_smooth[np.newaxis],
                                                      self.n_labels)[0][0])
        return Verdict(no_music=False, raw=genres[0], smoothed=smoothed)

    def _follow_change(self, result: WindowResult, end_sample: int) -> tuple[np.ndarray, bool]:
        """(outputs to smooth, label moved now): the change detector's reading of the patches."""
        if result.patch_scores is None:
            return result.outputs, False
        if self.change is None:
            self.change = change_detector(self.change_config, self.n_labels,
                                          result.patch_scores.shape[0], self.patch_step_samples)
            if self.change is None:
                return result.outputs, False
        return self.change.update(result.outputs, result.patch_scores, end_sample,
                                  self.smoother.label_index)


def to_prediction(verdict: Verdict, source: str, span_ms: tuple[int, int], wall_time: float,
                  labels: Sequence[str], model: str) -> Prediction:
    """The prediction event of a genre verdict on a window spanning ``span_ms``."""
    smoothed, raw = verdict.smoothed, verdict.raw
    if smoothed is None or raw is None:
        raise ValueError("a no-music verdict has no prediction")
    return Prediction(
        source=source, window_start_ms=span_ms[0], window_end_ms=span_ms[1],
        wall_time=wall_time, genre=labels[smoothed.label_index],
        confidence=round(float(smoothed.confidence), 4),
        probabilities={lb: round(float(p), 4)
                       for lb, p in zip(labels, smoothed.probabilities, strict=True)},
        raw_probabilities={lb: round(float(p), 4) for lb, p in zip(labels, raw, strict=True)},
        model=model)
