"""The slicing rules of :mod:`training.slicing`, applied to a stream of samples.

No duration is needed up front: until 90 s have arrived (or the stream ends) the samples are
kept, which decides the intro rule exactly; afterwards a window is released once the 30 s
after it have arrived (so it is not in the outro), and only the samples the next window
needs are kept. Memory is bounded by about ``window + edge + one chunk`` of audio,
whatever the file's length; the windows equal ``plan_slices`` on the whole file.
"""

from __future__ import annotations

import numpy as np

from models.bfft import DEFAULT_PARAMS
from training.slicing import (
    SKIP_EDGE_SECONDS,
    SKIP_MIN_SONG_SECONDS,
    SlicePlan,
    loop_to_window,
    plan_slices,
)

Window = tuple[int, np.ndarray]
"""(start sample, the window's samples) at the contract rate."""


class StreamSlicer:
    """Feed chunks with :meth:`push`, then call :meth:`finish`; each returns ready windows."""

    def __init__(self, hop_samples: int, window_samples: int = DEFAULT_PARAMS.window_samples,
                 sample_rate_hz: int = DEFAULT_PARAMS.sample_rate_hz,
                 allow_short: bool = True, loop_short: bool = False) -> None:
        if hop_samples <= 0 or window_samples <= 0:
            raise ValueError(f"window and hop must be positive, got {window_samples}, "
                             f"{hop_samples}")
        self.hop_samples = hop_samples
        self.window_samples = window_samples
        self.sample_rate_hz = sample_rate_hz
        self.allow_short = allow_short
        self.loop_short = loop_short
        """A file shorter than a window is looped to fill it (else zero-padded later)."""
        self.n_samples = 0
        """Samples seen so far (the whole length after :meth:`finish`)."""
        self.plan: SlicePlan | None = None
        """Set once known: every start after finish; before, only ``skipped_edges``."""
        self._edge_samples = round(SKIP_EDGE_SECONDS * sample_rate_hz)
        self._pieces: list[np.ndarray] = []
        self._kept_from = 0
        self._next_start: int | None = None

    def push(self, chunk: np.ndarray) -> list[Window]:
        """Take new samples; the windows now known to be in the plan."""
        if chunk.size:
            self._pieces.append(np.asarray(chunk, dtype=np.float32))
            self.n_samples += chunk.size
        if self._next_start is None and self.n_samples >= SKIP_MIN_SONG_SECONDS * \
                self.sample_rate_hz:
            self._next_start = self._edge_samples
            self.plan = SlicePlan(starts=(), skipped_edges=True)
        return self._ready()

    def finish(self) -> list[Window]:
        """The stream ended: the remaining windows; ``plan`` now lists every start."""
        if self._next_start is not None:
            windows = self._ready()
            end = self.n_samples - self._edge_samples - self.window_samples + 1
            self.plan = SlicePlan(starts=tuple(range(self._edge_samples, end, self.hop_samples)),
                                  skipped_edges=True)
            return windows
        self.plan = plan_slices(self.n_samples, self.sample_rate_hz, self.window_samples,
                                self.hop_samples, self.allow_short)
        kept = self._kept()
        if self.plan.padded and self.loop_short:
            return [(0, loop_to_window(kept, self.window_samples).copy())]
        return [(start, kept[start:start + self.window_samples].copy())
                for start in self.plan.starts]

    def _ready(self) -> list[Window]:
        """Windows whose 30 s of outro margin have arrived; drops samples no longer needed."""
        if self._next_start is None:
            return []
        windows: list[Window] = []
        last_sample = self.n_samples - self._edge_samples
        while self._next_start + self.window_samples <= last_sample:
            kept = self._kept()
            offset = self._next_start - self._kept_from
            windows.append((self._next_start, kept[offset:offset + self.window_samples].copy()))
            self._next_start += self.hop_samples
        self._drop_before(min(self._next_start, self.n_samples))
        return windows

    def _kept(self) -> np.ndarray:
        """The samples kept, as one array (the pieces are joined once)."""
        if len(self._pieces) != 1:
            joined = np.concatenate(self._pieces) if self._pieces else np.zeros(0, np.float32)
            self._pieces = [joined]
        return self._pieces[0]

    def _drop_before(self, sample: int) -> None:
        """Forget samples before ``sample``."""
        if sample <= self._kept_from:
            return
        kept = self._kept()
        self._pieces = [kept[sample - self._kept_from:].copy()]
        self._kept_from = sample
