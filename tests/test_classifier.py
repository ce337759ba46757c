"""Tests for daemon.classifier.InferenceWorker with a fake, controllable predict_batch."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from daemon.classifier import InferenceWorker, WindowJob
from models.outcome import WindowResult

TIMEOUT_SECONDS = 5.0
FEATURE_SHAPE = (4, 3)


def make_job(source_name: str, job_id: int, window_start_sample: int = 0) -> WindowJob:
    """A job whose features are filled with ``job_id`` (the fake model echoes it back)."""
    return WindowJob(
        source_name=source_name,
        features=np.full(FEATURE_SHAPE, job_id, dtype=np.float32),
        window_start_sample=window_start_sample,
        window_end_sample=window_start_sample + 100,
        sample_rate_hz=44100,
    )


def id_of(job: WindowJob) -> int:
    """The id a make_job job carries in its features."""
    return int(job.features.flat[0])


class FakeModel:
    """predict_batch stand-in: records batches, can block on an event, can fail on given calls."""

    def __init__(self, *, block: bool = False, fail_calls: tuple[int, ...] = ()) -> None:
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.fail_calls = fail_calls
        self.batches: list[np.ndarray] = []
        self.thread_names: list[str] = []
        self.in_progress = False
        self.started: asyncio.Queue[int] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        call_index = len(self.batches)
        self.batches.append(batch.copy())
        self.thread_names.append(threading.current_thread().name)
        self.in_progress = True
        self._loop.call_soon_threadsafe(self.started.put_nowait, call_index)
        try:
            if not self.release.wait(timeout=TIMEOUT_SECONDS):
                raise TimeoutError("fake model was never released")
            if call_index in self.fail_calls:
                raise RuntimeError("model exploded")
            ids = batch.reshape(batch.shape[0], -1)[:, 0].astype(np.float64)
            return np.column_stack([ids, -ids])  # row i echoes the id of job i
        finally:
            self.in_progress = False

    async def next_start(self) -> int:
        """Index of the next predict call to start."""
        return await asyncio.wait_for(self.started.get(), TIMEOUT_SECONDS)


class Collector:
    """on_result / on_error sink that tests can wait on."""

    def __init__(self) -> None:
        self.results: list[tuple[WindowJob, np.ndarray]] = []
        self.failures: list[tuple[WindowJob, BaseException]] = []
        self._changed = asyncio.Event()

    def on_result(self, job: WindowJob, result: WindowResult) -> None:
        self.results.append((job, result.outputs))
        self._changed.set()

    def on_error(self, job: WindowJob, exc: BaseException) -> None:
        self.failures.append((job, exc))
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        await asyncio.wait_for(self._wait(predicate), TIMEOUT_SECONDS)

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def result_ids(self) -> list[int]:
        return [id_of(job) for job, _ in self.results]


class Harness:
    """Owns one worker, its run() task and clean shutdown."""

    def __init__(self) -> None:
        self.collector = Collector()
        self.worker: InferenceWorker | None = None
        self.model: FakeModel | None = None
        self.task: asyncio.Task[None] | None = None

    def start(
        self, predict: Callable[[np.ndarray], np.ndarray], **worker_kwargs: Any
    ) -> InferenceWorker:
        if isinstance(predict, FakeModel):
            self.model = predict
        self.worker = InferenceWorker(predict, **worker_kwargs)
        self.task = asyncio.create_task(
            self.worker.run(self.collector.on_result, self.collector.on_error)
        )
        return self.worker

    async def aclose(self) -> None:
        if self.model is not None:
            self.model.release.set()
        if self.worker is not None:
            self.worker.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait_for(
                asyncio.gather(self.task, return_exceptions=True), TIMEOUT_SECONDS
            )


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await asyncio.wait_for(h.aclose(), TIMEOUT_SECONDS)


async def test_event_loop_stays_responsive_during_inference(harness: Harness) -> None:
    model = FakeModel(block=True)
    worker = harness.start(model)
    worker.submit("a", make_job("a", 1))
    assert await model.next_start() == 0
    timer_fired = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, timer_fired.set)
    await asyncio.wait_for(timer_fired.wait(), TIMEOUT_SECONDS)
    assert model.in_progress, "predict must still be blocked while the timer fires"
    assert harness.collector.results == []
    model.release.set()
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 1)
    assert model.thread_names[0].startswith("genred-inference")
    assert model.thread_names[0] != threading.current_thread().name


async def test_newest_window_wins_and_drops_are_counted(harness: Harness) -> None:
    model = FakeModel(block=True)
    worker = harness.start(model)
    worker.submit("a", make_job("a", 0))
    await model.next_start()
    for job_id in (1, 2, 3):  # all arrive during the first inference
        worker.submit("a", make_job("a", job_id))
    worker.submit("b", make_job("b", 10))
    assert worker.windows_dropped == 2
    assert worker.dropped_by_source == {"a": 2}
    assert worker.n_pending == 2
    model.release.set()
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 3)
    assert harness.collector.result_ids() == [0, 3, 10]
    assert [batch.shape[0] for batch in model.batches] == [1, 2]
    assert (worker.windows_classified, worker.batches, worker.errors) == (3, 2, 0)


async def test_windows_of_three_sources_form_one_batch(harness: Harness) -> None:
    timings: list[tuple[float, int]] = []
    model = FakeModel()
    worker = harness.start(model, on_inference=lambda s, n: timings.append((s, n)))
    for job_id, source_name in enumerate(("a", "b", "c")):
        worker.submit(source_name, make_job(source_name, job_id))
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 3)
    assert len(model.batches) == 1
    assert model.batches[0].shape == (3, *FEATURE_SHAPE)
    assert worker.batches == 1
    assert len(timings) == 1
    seconds, batch_size = timings[0]
    assert batch_size == 3
    assert 0.0 <= seconds < TIMEOUT_SECONDS


async def test_results_are_associated_with_their_jobs(harness: Harness) -> None:
    model = FakeModel()
    worker = harness.start(model)
    submitted = {f"src{i}": 7 * i + 1 for i in range(6)}
    for source_name, job_id in submitted.items():
        worker.submit(source_name, make_job(source_name, job_id, window_start_sample=job_id))
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 6)
    assert harness.collector.result_ids() == list(submitted.values())
    for job, row in harness.collector.results:
        assert id_of(job) == submitted[job.source_name]
        assert job.window_start_sample == id_of(job)
        np.testing.assert_array_equal(row, [id_of(job), -id_of(job)])


async def test_max_batch_size_splits_pending_windows(harness: Harness) -> None:
    model = FakeModel()
    worker = harness.start(model, max_batch_size=2)
    for job_id in range(5):
        worker.submit(f"s{job_id}", make_job(f"s{job_id}", job_id))
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 5)
    assert [batch.shape[0] for batch in model.batches] == [2, 2, 1]
    assert harness.collector.result_ids() == [0, 1, 2, 3, 4]
    assert len(set(model.thread_names)) == 1


async def test_predict_exception_is_survived(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    model = FakeModel(fail_calls=(0,))
    worker = harness.start(model)
    with caplog.at_level(logging.ERROR, logger="daemon.classifier"):
        worker.submit("a", make_job("a", 1))
        worker.submit("b", make_job("b", 2))
        await harness.collector.wait_until(lambda: len(harness.collector.failures) == 2)
    assert [id_of(job) for job, _ in harness.collector.failures] == [1, 2]
    assert all(isinstance(exc, RuntimeError) for _, exc in harness.collector.failures)
    assert any(record.exc_info is not None for record in caplog.records)
    assert (worker.errors, worker.windows_failed, worker.batches) == (1, 2, 0)
    worker.submit("a", make_job("a", 3))
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 1)
    assert harness.collector.result_ids() == [3]
    assert (worker.errors, worker.batches, worker.windows_classified) == (1, 1, 1)


async def test_malformed_model_output_counts_as_error(harness: Harness) -> None:
    worker = harness.start(lambda batch: np.zeros((batch.shape[0] + 1, 2)))
    worker.submit("a", make_job("a", 1))
    await harness.collector.wait_until(lambda: len(harness.collector.failures) == 1)
    assert isinstance(harness.collector.failures[0][1], ValueError)
    assert worker.errors == 1 and worker.windows_classified == 0


async def test_async_and_failing_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    delivered: list[int] = []
    done = asyncio.Event()

    async def on_result(job: WindowJob, row: np.ndarray) -> None:
        await asyncio.wait_for(asyncio.sleep(0), TIMEOUT_SECONDS)
        if id_of(job) == 1:
            raise KeyError("downstream bug")
        delivered.append(id_of(job))
        done.set()

    worker = InferenceWorker(FakeModel())
    task = asyncio.create_task(worker.run(on_result))
    try:
        worker.submit("a", make_job("a", 1))
        worker.submit("b", make_job("b", 2))
        await asyncio.wait_for(done.wait(), TIMEOUT_SECONDS)
    finally:
        worker.close()
        await asyncio.wait_for(task, TIMEOUT_SECONDS)  # close() ends run()
    assert delivered == [2]
    assert worker.callback_errors == 1
    assert worker.windows_classified == 2


async def test_cancel_during_inference_then_close(harness: Harness) -> None:
    model = FakeModel(block=True)
    worker = harness.start(model)
    worker.submit("a", make_job("a", 1))
    await model.next_start()
    assert harness.task is not None
    harness.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(harness.task, TIMEOUT_SECONDS)
    worker.close()
    worker.submit("a", make_job("a", 2))  # ignored after close
    assert worker.n_pending == 0
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(worker.run(harness.collector.on_result), TIMEOUT_SECONDS)


async def test_submit_rejects_mismatched_source_name() -> None:
    worker = InferenceWorker(lambda batch: batch)
    try:
        with pytest.raises(ValueError):
            worker.submit("a", make_job("b", 1))
    finally:
        worker.close()


def test_bad_max_batch_size_rejected() -> None:
    with pytest.raises(ValueError):
        InferenceWorker(lambda batch: batch, max_batch_size=0)


async def test_stale_rows_and_replaced_windows_are_dropped_and_reported(harness: Harness) -> None:
    """An all-NaN output row means the window went stale: counted as dropped, not delivered."""
    reported: list[str] = []

    def predict(batch: np.ndarray) -> np.ndarray:
        out = np.repeat(batch[:, :1, 0], 3, axis=1)
        out[batch[:, 0, 0] < 0] = np.nan  # negative ids: stale windows
        return out

    worker = harness.start(predict, on_drop=reported.append,
                           collate=lambda features: np.stack(features))
    worker.submit("a", make_job("a", -1))
    worker.submit("b", make_job("b", 5))
    await harness.collector.wait_until(lambda: len(harness.collector.results) == 1)
    assert harness.collector.result_ids() == [5]
    assert worker.windows_dropped == 1 and worker.dropped_by_source == {"a": 1}
    assert reported == ["a"] and worker.windows_classified == 1
