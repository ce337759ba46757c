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
item per source, newest wins (an item refers to the source's new patches since its last
window, so a replaced item loses nothing and is not counted as dropped).

Overload: sources are served round-robin, least recently served first (a batch takes up to
``max_batch_size`` sources, each with its window and work item; ties in waiting order), and
a replaced window is shed through ``discard`` (patch models skip its new patches for good),
so when work arrives faster than it can be done every source's effective hop grows alike and
a batch costs no more than when the worker keeps up. :class:`~daemon.overload.LoadMonitor`
(``load``) keeps the overload ratio and each source's effective hop.

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

from daemon.overload import LoadMonitor
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
Discard = Callable[[Any], None]
"""Shed a replaced window's features or work item (event loop), e.g. skip its patches."""


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
        discard: Discard | None = None,
    ) -> None:
        """Wrap ``predict_batch``; batches hold at most ``max_batch_size`` windows (None: all)."""
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1 or None, got {max_batch_size!r}")
        self._predict_batch = predict_batch
        self._collate = collate
        self._on_drop = on_drop
        self._prefetch = prefetch
        self._discard = discard
        self._work_slots: dict[str, Any] = {}
        self._waiting: dict[str, None] = {}
        """Sources with a window or work pending, in the order they began waiting."""
        self.load = LoadMonitor()
        """Overload ratio, shedding episodes and effective hops."""
        self._max_batch_size = max_batch_size
        self._on_inference = on_inference
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._slots: dict[str, WindowJob] = {}
        self._arrived_at: dict[str, float] = {}
        """Monotonic time the pending window of each source arrived."""
        self._served_in: dict[str, int] = {}
        """The number of the last batch that took each source (round-robin order)."""
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
        self.batches_taken = 0
        """Batches taken from the waiting sources (served or not)."""
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
        self._arrived_at[source_name] = time.monotonic()
        self._arrive(source_name)
        self._slot_free_event(source_name).clear()
        if replaced is not None:
            self._shed(source_name, replaced.features)
            self._count_drop(source_name)
            _LOGGER.debug(
                "dropped unclassified window %s..%s of %s (newer window arrived)",
                replaced.window_start_sample,
                replaced.window_end_sample,
                source_name,
            )

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
        replaced = source_name in self._work_slots
        self._work_slots[source_name] = work
        self._arrive(source_name, count=not replaced)

    def _arrive(self, source_name: str, count: bool = True) -> None:
        """Queue ``source_name`` (unless waiting already), count the item, wake the worker."""
        self._waiting.setdefault(source_name, None)
        if count:
            self.load.on_arrival()
        self._pending.set()

    def _shed(self, source_name: str, item: Any) -> None:
        """A window of ``source_name`` was replaced before it ran: shed it."""
        self.load.on_shed(source_name)
        if self._discard is None:
            return
        try:
            self._discard(item)
        except Exception:
            self.callback_errors += 1
            _LOGGER.exception("discard hook %r failed", self._discard)

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
        self._waiting.clear()
        for event in self._slot_free.values():
            event.set()
        self._pending.set()  # wake run() so it returns
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take_batch(self) -> tuple[list[WindowJob], list[Any]]:
        """The windows and work items of up to max_batch_size sources, least recently served
        first (a source whose item arrived late in a turn does not lose its next turn)."""
        names = list(self._waiting)
        if self._max_batch_size and len(names) > self._max_batch_size:
            names = sorted(names, key=lambda name: self._served_in.get(name, -1))
            names = names[:self._max_batch_size]
        for name in names:
            del self._waiting[name]
            self._served_in[name] = self.batches_taken
        self.batches_taken += 1
        jobs = [self._slots.pop(name) for name in names if name in self._slots]
        now = time.monotonic()
        for job in jobs:
            self._slot_free_event(job.source_name).set()
            self.load.on_taken(job.source_name, now - self._arrived_at.pop(job.source_name, now))
        work = [self._work_slots.pop(name) for name in names if name in self._work_slots]
        if not self._waiting:
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
            results, seconds, busy_seconds = await loop.run_in_executor(
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
        self.load.on_batch(len(jobs) + len(work), busy_seconds)
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
            self.load.on_classified(job.source_name, job.window_end_sample, job.sample_rate_hz)
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
                       ) -> tuple[list[WindowResult], float, float]:
        """Worker-thread body: the windows (collate, predict, check), then the work ahead (in
        grid order: a window is never older than the work after it); (results, predict
        seconds, busy seconds)."""
        started = time.perf_counter()
        results: list[WindowResult] = []
        if features:
            answer = self._predict_batch(self._collate(features))
            if isinstance(answer, np.ndarray):
                answer = results_from_rows(answer)
            results = check_results(answer, len(features))
        seconds = time.perf_counter() - started
        if work and self._prefetch is not None:
            try:
                self._prefetch(work)
                self.prefetch_calls += 1
            except Exception:  # the windows' own call retries what was not done
                self.prefetch_errors += 1
                _LOGGER.exception("work ahead of windows failed for %d sources", len(work))
        return results, seconds, time.perf_counter() - started

    async def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call a sync or async callback; log and count its exceptions."""
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.callback_errors += 1
            _LOGGER.exception("callback %r failed", callback)
