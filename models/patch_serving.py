"""Serving of 'musicnn-patch-head' models: each 3-s patch computed and encoded once, windows pooled.

Per source and hop:

* event loop: :class:`PatchExtractor` pushes the chunk through
  :class:`~models.musicnn.streaming.StreamingMusicnnMel` (each 16-kHz sample, STFT/mel frame
  and 2.992-s patch once, on the grid from the stream start; ~0.5 ms of CPU per 2-s hop) and
  queues completed patches in the source's :class:`~models.musicnn.patch_cache.PatchCache`;
  a window is due when a patch completes (the hop rounded to whole patches), and its input is
  a :class:`PatchWindow`, a reference to the cache and the window's newest patch;
* inference thread, between windows (:meth:`PatchPooling.prefetch`): a source's new patches
  are encoded as soon as they exist, also while the source warms up, so its first window
  (like every later one) needs only its newest patch encoded: no warm-up burst when many
  sources start together;
* inference thread (:meth:`PatchPooling.predict`): the queued patches of every window in the
  batch go through patch encoder + head in one call (``encode``: patch -> head logits), the
  logits are cached, and each window's output is softmax(mean of its 10 patch logits /
  temperature), what the saved window model computes from the same patches.

A window's new patches are those since the source's previous window (:class:`PatchWindow`
``first_new..last_index``: its hop, or the whole window for the first); a work item's are those
since the last window (so a newer work item covers a replaced one). A window the worker sheds
(replaced by a newer one before it ran, :meth:`PatchPooling.discard`) drops its new patches
unencoded, for good: however far behind the inference thread is, a window costs at most its
own new patches, each patch is encoded at most once and in grid order, and a shed window's
successor pools over the patches of its window that were encoded (then without patch scores:
the change detector skips it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.loader import LoadedModel
from models.musicnn.features import window_patches
from models.musicnn.patch_cache import PatchCache, encode_ranges
from models.musicnn.spec import PARAMS
from models.musicnn.streaming import StreamingMusicnnMel, hop_patches, patch_start_sample
from models.outcome import WindowResult
from models.patch_tflite import ENCODE_CHUNK_PATCHES, PatchLogitsPredictor, pool_patch_logits
from models.serving import WindowServing

_LOGGER = logging.getLogger(__name__)

HISTORY_PATCHES = 3
"""Patch logits kept beyond the window: a window taken by the inference thread is pooled
even when 3 newer patches (9 s) arrived meanwhile."""


@dataclass(frozen=True)
class PatchWindow:
    """A due window (or a work item) of a patch model: the source's cache and its patches."""

    cache: PatchCache
    last_index: int
    """Grid index of the window's newest patch."""
    first_new: int = 0
    """Grid index of the item's first new patch (after the source's previous window)."""


class PatchExtractor:
    """Streaming musicnn-mel patches into a per-source cache of patch logits; steps = patches."""

    def __init__(self, n_patches: int, history: int = HISTORY_PATCHES) -> None:
        self.frontend = StreamingMusicnnMel()
        self.cache = PatchCache(n_patches, history)
        self.window_steps = n_patches
        self.window_samples = patch_start_sample(n_patches)
        """A window's audio (10 patches = 1,319,472 samples = 29.920 s)."""
        self.audio_samples = 0
        self._new_patches = False
        self._window_last = -1
        """Grid index of the newest patch of the previous window (-1: none yet)."""

    def push(self, samples: np.ndarray) -> None:
        """Compute the frames and patches the samples complete; queue new patches."""
        new = self.frontend.push(samples)
        self._new_patches = bool(new.patches.shape[0])
        if self._new_patches:
            self.cache.add(new.first_index, new.patches)

    def pending_work(self) -> PatchWindow | None:
        """The patches since the last window when the last push queued new ones (to encode
        ahead of the next window)."""
        if not self._new_patches:
            return None
        return PatchWindow(self.cache, self.frontend.n_patches_total - 1, self._window_last + 1)

    def steps_done(self, total_samples: int) -> int:
        """Patches emitted so far (the front-end's count for the samples pushed)."""
        return self.frontend.n_patches_total

    def step_end_sample(self, n_steps: int) -> int:
        """End of patch ``n_steps - 1``'s own audio (rounded down to a whole sample)."""
        return patch_start_sample(n_steps)

    def hop_steps(self, hop_seconds: float) -> int:
        """A hop in whole patches (2 s -> 1 patch = 2.992 s)."""
        return hop_patches(hop_seconds)

    def features(self, window_samples: Callable[[], np.ndarray]) -> PatchWindow:
        """The window of the newest patches (no audio read, no work)."""
        last = self.frontend.n_patches_total - 1
        first_new, self._window_last = self._window_last + 1, last
        return PatchWindow(self.cache, last, first_new)

    def offline(self, window_audio: np.ndarray) -> np.ndarray:
        """(10, 187, 96) patches of one window of 44.1 kHz audio, without streaming state."""
        return window_patches(window_audio, PARAMS)


class PatchPooling:
    """Encodes queued patches to head logits (once each) and pools windows from the cache."""

    def __init__(self, encode: Callable[[np.ndarray], np.ndarray], temperature: float,
                 n_patches: int, n_outputs: int) -> None:
        self.encode = encode
        """(n, 187, 96) patches -> (n, n_outputs) head logits."""
        self.temperature = float(temperature)
        self.n_patches = int(n_patches)
        self.n_outputs = int(n_outputs)
        self.patch_step_samples = patch_start_sample(1000) / 1000
        """Samples per patch at 44.1 kHz (2.992 s), for the change detector's grid."""

    def new_extractor(self) -> PatchExtractor:
        """A fresh streaming front-end and cache for one source."""
        return PatchExtractor(self.n_patches)

    def prefetch(self, items: Sequence[PatchWindow]) -> int:
        """Encode the work items' queued new patches now (in one call); returns the count."""
        return encode_ranges([(item.cache, item.first_new, item.last_index) for item in items],
                             self.encode)

    def discard(self, item: PatchWindow) -> None:
        """Shed a window that was replaced before it ran: its new patches are skipped."""
        item.cache.skip(item.first_new, item.last_index)

    def collate(self, features: list[PatchWindow]) -> list[PatchWindow]:
        """The windows as they are (their patches live in the caches)."""
        return list(features)

    def predict(self, windows: Sequence[PatchWindow]) -> list[WindowResult]:
        """Encode the windows' queued new patches in one call, then pool each window.

        A window whose own new patches left the cache unencoded (the source ran more than the
        history ahead of this thread, e.g. a file read faster than real time) is stale.
        """
        encode_ranges([(w.cache, max(w.first_new, w.last_index - self.n_patches + 1),
                        w.last_index) for w in windows], self.encode)
        return [self._pool(window) for window in windows]

    def _pool(self, window: PatchWindow) -> WindowResult:
        """softmax(mean patch logits / temperature) of one window and its patch scores."""
        try:
            patch_logits = window.cache.window_outputs(window.last_index, window.first_new)
        except KeyError:
            return WindowResult.gone_stale(self.n_outputs)
        outputs = pool_patch_logits(patch_logits, self.temperature).astype(np.float32)
        if patch_logits.shape[0] < self.n_patches:  # shed patches: no per-patch grid
            return WindowResult(outputs, None)
        scores = (patch_logits.astype(np.float64) / self.temperature).astype(np.float32)
        return WindowResult(outputs, scores)


def patch_serving(loaded: LoadedModel) -> Any:
    """Patch pooling with the runtime's per-patch stage (Keras stages, or the TFLite export of
    the patch-logits stage); a runtime without the stages serves whole windows."""
    contract = loaded.contract
    predictor = loaded.predictor
    if isinstance(predictor, PatchLogitsPredictor):
        return PatchPooling(predictor.encode, predictor.temperature, contract.input_shape[0],
                            contract.n_outputs)
    keras_model = getattr(predictor, "model", None)
    if keras_model is None:
        _LOGGER.info("%s: runtime without patch stages; each window's 10 patches are computed "
                     "and encoded per hop", contract.name)
        return WindowServing(loaded)
    from models.patch_head import patch_logits_model

    patch_logits, temperature = patch_logits_model(keras_model)

    def encode(patches: np.ndarray) -> np.ndarray:
        return np.concatenate([
            np.asarray(patch_logits.predict_on_batch(patches[i:i + ENCODE_CHUNK_PATCHES]),
                       dtype=np.float32)
            for i in range(0, patches.shape[0], ENCODE_CHUNK_PATCHES)])

    return PatchPooling(encode, temperature, contract.input_shape[0], contract.n_outputs)
