"""Inference stage: batches the newest window of every source through one model call.

The stage is model-agnostic: it is given ``predict_batch``, a blocking callable mapping a batch
of N windows (by default their features stacked, shape (N, ...); ``collate`` makes it) to one
:class:`~models.outcome.WindowResult` per window (a plain (N, n_outputs) array is taken as
results without patch scores), which it hands to ``on_result`` untouched. Sources :meth:`submit`
windows from the event loop; each source has one pending slot, so a window that was not yet
classified when a newer one arrives is dropped (newest wins, the classifier never falls
behind real time). :meth:`InferenceWorker.run` takes all pending windows, one per source, and
classifies them as one batch on a single dedicated worker thread, so inference never blocks
the event loop and never runs concurrently with itself.

Models with work ahead of windows (patch-head models: encode each 3-s patch as soon as it
exists, also while a source warms up) take :meth:`InferenceWorker.submit_work`: one pending
item per source, newest wins (an item refers to the source's queue of new patches, so a
replaced item loses nothing and is not counted as dropped); windows go first, work fills the
rest of a batch, on the same thread.

A source that can wait (a file read faster than real time) awaits :meth:`wait_slot_free`
after each chunk: it goes on once its pending window was taken into a batch, so it is read as
fast as inference allows and none of its windows is dropped (backpressure).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.outcome import WindowResult, check_results, results_from_rows

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowJob:
    """One analysis window of one source, waiting to be classified."""

    source_name: str
    """Name of the audio source the window came from."""
    features: Any
    """Model input for this window, e.g. a (224, 224, 3) uint8 spectrogram image or a
    reference to the source's patch cache (models/patch_serving.py)."""
    window_start_sample: int
    """First sample of the window, in samples since the source started (inclusive)."""
    window_end_sample: int
    """End of the window, in samples since the source started (exclusive)."""
    sample_rate_hz: int
    """Sample rate of the sample counts above, in Hz."""


PredictBatch = Callable[[Any], Sequence[WindowResult] | np.ndarray]
"""Blocking model call: a collated batch of N windows -> N results (or outputs (N, n))."""
Collate = Callable[[list[Any]], Any]
"""The windows' features -> one predict_batch argument (default: np.stack)."""
ResultCallback = Callable[[WindowJob, WindowResult], Awaitable[None] | None]
"""Called with a job and its result; may be sync or async."""
ErrorCallback = Callable[[WindowJob, BaseException], Awaitable[None] | None]
"""Called with each job of a failed batch and the exception; may be sync or async."""
InferenceHook = Callable[[float, int], None]
"""Metrics hook: (inference seconds, batch size), called on the event loop per good batch."""
Prefetch = Callable[[list[Any]], Any]
"""Blocking work ahead of windows (inference thread): the pending work items of N sources."""
DropHook = Callable[[str], None]
"""Metrics hook: called with the source name of every dropped window, on the event loop."""


class InferenceWorker:
    """Keeps the newest pending window per source and classifies them in batches."""

    def __init__(
        self,
        predict_batch: PredictBatch,
        *,
        max_batch_size: int | None = None,
        on_inference: InferenceHook | None = None,
        thread_name: str = "genred-inference",
        collate: Collate = np.stack,
        on_drop: DropHook | None = None,
        prefetch: Prefetch | None = None,
    ) -> None:
        """Wrap ``predict_batch``; batches hold at most ``max_batch_size`` windows (None: all)."""
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1 or None, got {max_batch_size!r}")
        self._predict_batch = predict_batch
        self._collate = collate
        self._on_drop = on_drop
        self._prefetch = prefetch
        self._work_slots: dict[str, Any] = {}
        self._max_batch_size = max_batch_size
        self._on_inference = on_inference
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._slots: dict[str, WindowJob] = {}
        self._slot_free: dict[str, asyncio.Event] = {}
        self._pending = asyncio.Event()
        self._running = False
        self._closed = False
        self.windows_classified = 0
        """Windows whose probabilities were delivered to on_result."""
        self.windows_dropped = 0
        """Windows replaced by a newer one of the same source before being classified, or
        gone stale while waiting (a stale result: its inputs were dropped)."""
        self.dropped_by_source: dict[str, int] = {}
        """windows_dropped split by source name."""
        self.batches = 0
        """Successful predict_batch calls."""
        self.errors = 0
        """Failed predict_batch calls (exception or malformed output)."""
        self.windows_failed = 0
        """Windows in failed batches."""
        self.callback_errors = 0
        """Exceptions raised by on_result / on_error / on_inference (logged and survived)."""
        self.prefetch_calls = 0
        """prefetch calls (work ahead of windows) that ran."""
        self.prefetch_errors = 0
        """prefetch calls that raised (logged; the windows still run)."""

    @property
    def n_pending(self) -> int:
        """Number of sources with a window waiting to be classified."""
        return len(self._slots)

    def submit(self, source_name: str, window: WindowJob) -> None:
        """Make ``window`` the pending window of ``source_name``; call from the event loop."""
        if window.source_name != source_name:
            raise ValueError(
                f"window.source_name {window.source_name!r} != source_name {source_name!r}"
            )
        if self._closed:
            _LOGGER.debug("worker closed; ignoring window of %s", source_name)
            return
        replaced = self._slots.get(source_name)
        self._slots[source_name] = window
        self._slot_free_event(source_name).clear()
        if replaced is not None:
            self._count_drop(source_name)
            _LOGGER.debug(
                "dropped unclassified window %s..%s of %s (newer window arrived)",
                replaced.window_start_sample,
                replaced.window_end_sample,
                source_name,
            )
        self._pending.set()

    async def wait_slot_free(self, source_name: str) -> None:
        """Return once ``source_name`` has no window waiting (it was taken into a batch, or
        the worker closed): the backpressure of a source that can wait."""
        if source_name in self._slots and not self._closed:
            await self._slot_free_event(source_name).wait()

    def _slot_free_event(self, source_name: str) -> asyncio.Event:
        """The event set while ``source_name`` has no window waiting."""
        event = self._slot_free.get(source_name)
        if event is None:
            event = self._slot_free[source_name] = asyncio.Event()
        return event

    def submit_work(self, source_name: str, work: Any) -> None:
        """Make ``work`` the pending work-ahead item of ``source_name`` (newest wins)."""
        if self._closed or self._prefetch is None:
            return
        self._work_slots[source_name] = work
        self._pending.set()

    async def run(self, on_result: ResultCallback, on_error: ErrorCallback | None = None) -> None:
        """Classify pending windows until cancelled or closed, reporting each job's result."""
        if self._closed:
            raise RuntimeError("InferenceWorker is closed")
        if self._running:
            raise RuntimeError("InferenceWorker.run is already running")
        self._running = True
        try:
            while not self._closed:
                await self._pending.wait()
                if self._closed:
                    break
                jobs, work = self._take_batch()
                if jobs or work:
                    await self._process(jobs, work, on_result, on_error)
        finally:
            self._running = False

    def close(self) -> None:
        """Stop accepting windows, end :meth:`run`, and shut the worker thread down (no wait)."""
        self._closed = True
        self._slots.clear()
        self._work_slots.clear()
        for event in self._slot_free.values():
            event.set()
        self._pending.set()  # wake run() so it returns
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take_batch(self) -> tuple[list[WindowJob], list[Any]]:
        """Up to max_batch_size pending jobs, then work items to fill the batch; oldest first."""
        limit = self._max_batch_size or len(self._slots) + len(self._work_slots)
        jobs = [self._slots.pop(name) for name in list(self._slots)[:limit]]
        for job in jobs:
            self._slot_free_event(job.source_name).set()
        names = list(self._work_slots)[:limit - len(jobs)]
        work = [self._work_slots.pop(name) for name in names]
        if not self._slots and not self._work_slots:
            self._pending.clear()
        return jobs, work

    async def _process(
        self,
        jobs: list[WindowJob],
        work: list[Any],
        on_result: ResultCallback,
        on_error: ErrorCallback | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            results, seconds = await loop.run_in_executor(
                self._executor, self._predict_timed, [job.features for job in jobs], work
            )
        except Exception as exc:  # any model failure must not stop the daemon
            self.errors += 1
            self.windows_failed += len(jobs)
            _LOGGER.exception(
                "inference failed for a batch of %s windows (%s)",
                len(jobs),
                ", ".join(job.source_name for job in jobs),
            )
            if on_error is not None:
                for job in jobs:
                    await self._call(on_error, job, exc)
            return
        if not jobs:
            return
        self.batches += 1
        if self._on_inference is not None:
            await self._call(self._on_inference, seconds, len(jobs))
        for job, result in zip(jobs, results, strict=True):
            if result.stale:
                _LOGGER.debug("window %s..%s of %s went stale before inference",
                              job.window_start_sample, job.window_end_sample, job.source_name)
                self._count_drop(job.source_name)
                continue
            self.windows_classified += 1
            await self._call(on_result, job, result)

    def _count_drop(self, source_name: str) -> None:
        """Count a dropped window of ``source_name`` and report it to the drop hook."""
        self.windows_dropped += 1
        self.dropped_by_source[source_name] = self.dropped_by_source.get(source_name, 0) + 1
        if self._on_drop is not None:
            try:
                self._on_drop(source_name)
            except Exception:
                self.callback_errors += 1
                _LOGGER.exception("drop hook %r failed", self._on_drop)

    def _predict_timed(self, features: list[Any], work: list[Any]
                       ) -> tuple[list[WindowResult], float]:
        """Worker-thread body: work ahead, then collate, predict, check; (results, seconds)."""
        if work and self._prefetch is not None:
            try:
                self._prefetch(work)
                self.prefetch_calls += 1
            except Exception:  # the windows' own call retries what was not done
                self.prefetch_errors += 1
                _LOGGER.exception("work ahead of windows failed for %d sources", len(work))
        if not features:
            return [], 0.0
        started = time.perf_counter()
        batch = self._collate(features)
        answer = self._predict_batch(batch)
        seconds = time.perf_counter() - started
        if isinstance(answer, np.ndarray):
            answer = results_from_rows(answer)
        return check_results(answer, len(features)), seconds

    async def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call a sync or async callback; log and count its exceptions."""
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.callback_errors += 1
            _LOGGER.exception("callback %r failed", callback)
