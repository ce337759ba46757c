"""Per-source cache of per-patch encoder outputs: each patch encoded once, the window pooled.

For models of the form "patch encoder -> pooling over the window's patches -> head": the
front-end (:class:`~models.musicnn.streaming.StreamingMusicnnMel`) emits patches with their grid
index; :meth:`PatchCache.add` queues them (cheap, on the event loop);
:meth:`PatchCache.encode` (or :func:`encode_pending` for many sources in one batch, on the
inference thread) runs the encoder on the queued patches only; :meth:`PatchCache.pooled` is the
mean of the newest ``n_patches`` outputs, what the head sees. Patches that leave the window
before they are encoded (an encoder behind the stream) are dropped, never encoded; so are the
new patches of a window the daemon sheds (:meth:`PatchCache.skip`): a skipped patch never comes
back, so no later window costs more than its own new patches (:func:`encode_ranges`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

_LOGGER = logging.getLogger(__name__)

EncodeBatch = Callable[[np.ndarray], np.ndarray]
"""(n, ...) patches -> (n, dim) outputs, one row per patch."""


class PatchCache:
    """The newest ``n_patches`` patch outputs of one source, keyed by grid index; thread-safe."""

    def __init__(self, n_patches: int = 10, history: int = 0) -> None:
        if n_patches < 1 or history < 0:
            raise ValueError(f"need n_patches >= 1 and history >= 0, got {n_patches}, {history}")
        self.n_patches = int(n_patches)
        """Patches per window (10 x 2.992 s for a 30-s window)."""
        self.history = int(history)
        """Patches (queued or encoded) kept this far behind the window, so a window taken by
        the encoder before newer patches arrived can still be pooled (:meth:`window_outputs`)."""
        self.n_encoded_total = 0
        """Patches encoded since the start (each grid index at most once)."""
        self.n_skipped_total = 0
        """Patches dropped unencoded by :meth:`skip` (overload shedding)."""
        self._newest = -1
        self._pending: dict[int, np.ndarray] = {}
        self._in_flight: set[int] = set()
        self._outputs: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def newest_index(self) -> int:
        """Grid index of the newest patch added (-1 before the first)."""
        return self._newest

    @property
    def window_indices(self) -> range:
        """Grid indices of the current window's patches, oldest first."""
        return range(max(0, self._newest - self.n_patches + 1), self._newest + 1)

    @property
    def n_pending(self) -> int:
        """Patches of the window waiting for the encoder."""
        with self._lock:
            return len(self._pending)

    @property
    def ready(self) -> bool:
        """True when every patch of a full window has its output."""
        with self._lock:
            return self._newest + 1 >= self.n_patches and all(
                index in self._outputs for index in self.window_indices)

    def add(self, first_index: int, patches: np.ndarray) -> None:
        """Queue patches with grid indices ``first_index ..``; known or stale ones are ignored."""
        with self._lock:
            for offset, patch in enumerate(patches):
                index = first_index + offset
                known = index in self._outputs or index in self._in_flight
                if not known and index > self._newest - self.n_patches - self.history:
                    self._pending[index] = patch
                self._newest = max(self._newest, index)
            self._prune()

    def take_pending(self, first: int = 0, last: int | None = None
                     ) -> tuple[list[int], np.ndarray | None]:
        """Remove and return the queued patches (indices, stacked) in ``first..last``
        (default: all) for an encoder call."""
        with self._lock:
            end = self._newest if last is None else last
            indices = sorted(index for index in self._pending if first <= index <= end)
            if not indices:
                return [], None
            patches = np.stack([self._pending.pop(index) for index in indices])
            self._in_flight.update(indices)
            return indices, patches

    def store(self, indices: Sequence[int], outputs: np.ndarray) -> None:
        """Keep the encoder's outputs of ``indices`` (rows of ``outputs``) that are still wanted."""
        outputs = np.asarray(outputs)
        if outputs.ndim != 2 or outputs.shape[0] != len(indices):
            raise ValueError(f"expected ({len(indices)}, dim) outputs, got {outputs.shape}")
        with self._lock:
            for index, output in zip(indices, outputs, strict=True):
                self._in_flight.discard(index)
                self._outputs[index] = output.copy()
            self.n_encoded_total += len(indices)
            self._prune()

    def give_back(self, indices: Sequence[int], patches: np.ndarray) -> None:
        """Re-queue patches whose encoding failed (those still in the window)."""
        with self._lock:
            for index, patch in zip(indices, patches, strict=True):
                self._in_flight.discard(index)
                if index not in self._outputs:
                    self._pending[index] = patch
            self._prune()

    def skip(self, first: int, last: int) -> int:
        """Drop the queued patches in ``first..last`` unencoded (shed); returns how many."""
        with self._lock:
            indices = [index for index in self._pending if first <= index <= last]
            for index in indices:
                del self._pending[index]
            self.n_skipped_total += len(indices)
            return len(indices)

    def encode(self, encode_batch: EncodeBatch) -> int:
        """Encode the queued patches in one call; returns how many were encoded."""
        return encode_pending([self], encode_batch)

    def outputs(self) -> tuple[list[int], np.ndarray | None]:
        """The window's encoded outputs (grid indices, (n, dim)), oldest first."""
        with self._lock:
            indices = [index for index in self.window_indices if index in self._outputs]
            if not indices:
                return [], None
            return indices, np.stack([self._outputs[index] for index in indices])

    def window_outputs(self, last_index: int, first_new: int | None = None) -> np.ndarray:
        """(n, dim) outputs of the window ending at patch ``last_index``, oldest first: all
        ``n_patches`` (KeyError when one is missing), or with ``first_new`` those encoded, which
        must include every patch from ``first_new`` on (the window's own new patches)."""
        with self._lock:
            indices = range(last_index - self.n_patches + 1, last_index + 1)
            wanted = indices if first_new is None else range(max(indices.start, first_new),
                                                             last_index + 1)
            missing = [index for index in wanted if index not in self._outputs]
            if missing:
                raise KeyError(f"window ending at patch {last_index}: no output for {missing}")
            return np.stack([self._outputs[index] for index in indices
                             if index in self._outputs])

    def pooled(self, min_patches: int | None = None) -> np.ndarray:
        """Mean of the window's patch outputs (needs a full window unless ``min_patches``)."""
        indices, outputs = self.outputs()
        needed = self.n_patches if min_patches is None else max(1, min_patches)
        if outputs is None or len(indices) < needed:
            raise RuntimeError(f"{len(indices)} of {needed} patch outputs in the window")
        return outputs.mean(axis=0)

    def _prune(self) -> None:
        """Forget queued patches and outputs older than window + history (lock held)."""
        oldest = self._newest - self.n_patches - self.history + 1
        for table in (self._outputs, self._pending):
            for index in [index for index in table if index < oldest]:
                del table[index]


def encode_pending(caches: Sequence[PatchCache], encode_batch: EncodeBatch) -> int:
    """Encode every queued patch of ``caches`` in one ``encode_batch`` call; returns the count."""
    return encode_ranges([(cache, 0, cache.newest_index) for cache in caches], encode_batch)


def encode_ranges(ranges: Sequence[tuple[PatchCache, int, int]],
                  encode_batch: EncodeBatch) -> int:
    """Encode the queued patches of each (cache, first, last) in one ``encode_batch`` call, in
    grid order per cache (a cache listed twice: both ranges); returns the count."""
    ordered = sorted(ranges, key=lambda item: item[1])
    taken = [(cache, *cache.take_pending(first, last)) for cache, first, last in ordered]
    taken = [(cache, indices, patches) for cache, indices, patches in taken if indices]
    if not taken:
        return 0
    batch = np.concatenate([patches for _, _, patches in taken])
    try:
        outputs = np.asarray(encode_batch(batch))
        if outputs.ndim != 2 or outputs.shape[0] != batch.shape[0]:
            raise ValueError(f"encoder gave {outputs.shape} for {batch.shape[0]} patches")
    except Exception:
        for cache, indices, patches in taken:
            cache.give_back(indices, patches)
        raise
    row = 0
    for cache, indices, _ in taken:
        cache.store(indices, outputs[row:row + len(indices)])
        row += len(indices)
    _LOGGER.debug("encoded %d patches of %d sources", batch.shape[0], len(taken))
    return int(batch.shape[0])
