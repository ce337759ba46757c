"""Temporal smoothing and label hysteresis for per-window genre probabilities.

Each hop the classifier yields one probability vector for the newest window. The
:class:`Smoother` averages those vectors over time (an exponential moving average or a plain
moving average of the last ``window_hops`` vectors) and decides the reported label with
hysteresis: the first label is taken at once; afterwards a challenger replaces the current
label only when its smoothed probability exceeds the current label's by more than
``hysteresis_margin`` on ``hysteresis_hops`` consecutive hops. Pure numpy, no asyncio.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from daemon.schema import check

_LOGGER = logging.getLogger(__name__)

SmoothingMethod = Literal["ema", "mean"]


@dataclass(frozen=True)
class SmoothingConfig:
    """Smoothing of window probabilities and label hysteresis (config key ``smoothing``)."""

    method: SmoothingMethod = "ema"
    """ema (exponential moving average) or mean (moving average over window_hops)."""
    alpha: float = 0.5
    """EMA weight of the newest window, in (0, 1]."""
    window_hops: int = 5
    """Moving-average length in hops."""
    hysteresis_margin: float = 0.1
    """A new genre must lead the current one by this much smoothed probability..."""
    hysteresis_hops: int = 2
    """...for this many consecutive hops before the label changes."""

    def validate(self, path: str = "smoothing") -> None:
        """Range checks (ConfigError, a ValueError, naming the key path)."""
        check(self.method in ("ema", "mean"), f"{path}.method", "must be one of ['ema', 'mean']",
              self.method)
        check(0 < self.alpha <= 1, f"{path}.alpha", "must be in (0, 1]", self.alpha)
        check(self.window_hops >= 1, f"{path}.window_hops", "must be >= 1", self.window_hops)
        check(0 <= self.hysteresis_margin < 1, f"{path}.hysteresis_margin",
               "must be in [0, 1)", self.hysteresis_margin)
        check(self.hysteresis_hops >= 1, f"{path}.hysteresis_hops", "must be >= 1",
               self.hysteresis_hops)


@dataclass(frozen=True)
class SmoothedResult:
    """Output of one :meth:`Smoother.update`."""

    probabilities: np.ndarray
    """Smoothed probabilities, float64, shape (n_labels,), summing to 1."""
    label_index: int
    """Index of the current (hysteresis-filtered) label."""
    confidence: float
    """Smoothed probability (0..1) of the current label."""
    changed: bool
    """True when the label differs from the previous update's (also on the first update)."""


class Smoother:
    """Smooths a stream of probability vectors and reports a label with hysteresis."""

    def __init__(self, n_labels: int, config: SmoothingConfig | None = None) -> None:
        """Create a smoother for vectors of ``n_labels`` probabilities."""
        if int(n_labels) != n_labels or n_labels < 1:
            raise ValueError(f"n_labels must be an int >= 1, got {n_labels!r}")
        self._n_labels = int(n_labels)
        self._config = config if config is not None else SmoothingConfig()
        self._config.validate()
        self._history: deque[np.ndarray] = deque(maxlen=self._config.window_hops)
        self._ema: np.ndarray | None = None
        self._label_index: int | None = None
        self._challenger_index: int | None = None
        self._challenger_hops = 0

    @property
    def config(self) -> SmoothingConfig:
        """The smoothing configuration."""
        return self._config

    @property
    def n_labels(self) -> int:
        """Length of the probability vectors."""
        return self._n_labels

    @property
    def label_index(self) -> int | None:
        """Current label index, or None before the first update (or after reset)."""
        return self._label_index

    def reset(self) -> None:
        """Forget all history (after silence or a reconnect); the next label is taken at once."""
        self._history.clear()
        self._ema = None
        self._label_index = None
        self._challenger_index = None
        self._challenger_hops = 0

    def update(self, probabilities: np.ndarray) -> SmoothedResult:
        """Add one window's probabilities and return the smoothed state."""
        current = self._validated(probabilities)
        smoothed = self._smooth(current)
        label_index, changed = self._apply_hysteresis(smoothed)
        return SmoothedResult(
            probabilities=smoothed.copy(),
            label_index=label_index,
            confidence=float(smoothed[label_index]),
            changed=changed,
        )

    def _validated(self, probabilities: np.ndarray) -> np.ndarray:
        values = np.asarray(probabilities, dtype=np.float64)
        if values.shape != (self._n_labels,):
            raise ValueError(
                f"probabilities must have shape ({self._n_labels},), got {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("probabilities contain NaN or infinity")
        if np.any(values < 0.0):
            raise ValueError("probabilities must be non-negative")
        total = float(values.sum())
        if total <= 0.0:
            raise ValueError("probabilities sum to zero")
        return values / total

    def _smooth(self, current: np.ndarray) -> np.ndarray:
        if self._config.method == "mean":
            self._history.append(current)
            smoothed = np.mean(np.stack(self._history), axis=0)
        else:
            alpha = self._config.alpha
            smoothed = current if self._ema is None else alpha * current + (1 - alpha) * self._ema
            self._ema = smoothed
        return smoothed / smoothed.sum()

    def _apply_hysteresis(self, smoothed: np.ndarray) -> tuple[int, bool]:
        """Update the current label from ``smoothed``; return (label_index, changed).

        The challenger is the arg-max label; its streak restarts when a different label leads.
        """
        leader = int(np.argmax(smoothed))
        current = self._label_index
        if current is None:
            self._label_index = leader
            _LOGGER.debug("first label %s (p=%.3f)", leader, smoothed[leader])
            return leader, True
        lead = smoothed[leader] - smoothed[current]
        if leader == current or lead <= self._config.hysteresis_margin:
            self._challenger_index = None
            self._challenger_hops = 0
            return current, False
        if leader == self._challenger_index:
            self._challenger_hops += 1
        else:
            self._challenger_index = leader
            self._challenger_hops = 1
        if self._challenger_hops < self._config.hysteresis_hops:
            return current, False
        _LOGGER.debug(
            "label %s -> %s after %s hops (lead %.3f)",
            current,
            leader,
            self._challenger_hops,
            lead,
        )
        self._label_index = leader
        self._challenger_index = None
        self._challenger_hops = 0
        return leader, True
