"""Wires the pipeline: sources -> windowers -> inference worker -> judges -> outputs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemon.classifier import InferenceWorker, WindowJob
from daemon.config import Config
from daemon.messages import SourceState
from daemon.metrics import DaemonMetrics
from daemon.output import Output, OutputContext, OutputFactory, SourceStatus
from daemon.phases import PhaseSpreader
from daemon.redact import redact_optional
from daemon.sources import SourceConfig
from daemon.spectrogram import Spectrograms
from daemon.verdict import Verdict, WindowJudge, to_prediction
from daemon.windower import Window, Windower
from models.outcome import WindowResult
from models.resample import SAMPLE_RATE_HZ
from models.serving import Serving

_LOGGER = logging.getLogger(__name__)


@dataclass
class ModelHandle:
    """What the service needs of a model: its name, its labels and how it is served.

    ``serving`` (models/serving.py, chosen by the model kind) makes a feature extractor per
    source and maps a batch of windows to one result per window on the inference thread.
    """

    name: str
    labels: Sequence[str]
    serving: Serving
    inference: dict[str, Any] = field(default_factory=dict)
    """The runtime it runs on and why (/healthz ``inference``)."""

    def windower(self, hop_seconds: float, silence_rms_dbfs: float) -> Windower:
        """A fresh windower with this model's feature extractor."""
        return Windower(self.serving.new_extractor(), SAMPLE_RATE_HZ, hop_seconds,
                        silence_rms_dbfs)


@dataclass
class _SourceRuntime:
    """Per-source pipeline state."""

    config: SourceConfig
    windower: Windower
    judge: WindowJudge
    """The source's smoother and change detector."""
    source: Any = None
    source_state: SourceState = SourceState.CONNECTING
    published_state: SourceState | None = None
    published_message: str | None = None
    message: str | None = None
    windows: int = 0
    overflows_seen: int = 0
    no_music: bool = False
    """Whether the newest classified window was no music."""


class Service:
    """The genred daemon's pipeline, run until ``stop`` is set."""

    def __init__(self, config: Config, model: ModelHandle,
                 metrics: DaemonMetrics | None = None,
                 outputs: Sequence[tuple[str, OutputFactory]] = (),
                 options: dict[str, Any] | None = None) -> None:
        self.config = config
        self.model = model
        self.metrics = metrics or DaemonMetrics()
        self._started_monotonic = time.monotonic()
        self._runtimes = {
            s.name: _SourceRuntime(
                config=s,
                windower=model.windower(config.window.hop_seconds,
                                        config.window.silence_rms_dbfs),
                judge=WindowJudge(len(model.labels), config.smoothing, config.change,
                                  model.serving.patch_step_samples),
            )
            for s in config.sources
        }
        for name in self._runtimes:
            self.metrics.add_source(name)
        self._batch_seconds = 0.0
        """Wall time of the inference batch whose results are being delivered."""
        serving = model.serving
        self.worker = InferenceWorker(serving.predict,
                                      max_batch_size=config.inference.max_batch_size,
                                      on_inference=self._on_inference, collate=serving.collate,
                                      on_drop=self._on_drop, prefetch=serving.prefetch,
                                      discard=serving.discard)
        self.phases = PhaseSpreader(
            next(iter(self._runtimes.values())).windower.hop_seconds if self._runtimes else 1.0,
            SAMPLE_RATE_HZ, len(self._runtimes) > config.inference.max_batch_size)
        """Spreads real-time sources' due windows over the hop (many sources only)."""
        self.spectrograms = Spectrograms({n: rt.windower for n, rt in self._runtimes.items()})
        self.outputs: list[Output] = []
        self._output_names = [name for name, _ in outputs]
        self._build_outputs(outputs, options or {})
        self._observe_counts()

    def _build_outputs(self, factories: Sequence[tuple[str, OutputFactory]],
                       options: dict[str, Any]) -> None:
        """Build the outputs the config turns on, in table order."""
        context = OutputContext(
            config=self.config, model_name=self.model.name, labels=self.model.labels,
            sources=list(self._runtimes), metrics=self.metrics, health=self.health,
            spectrogram=self.spectrograms.response, extra=options)
        for _name, factory in factories:
            output = factory(context)
            if output is not None:
                self.outputs.append(output)

    @property
    def publisher(self) -> Any:
        """The WebSocket/HTTP server (its ``port``), when that output is built."""
        for output in self.outputs:
            if hasattr(output, "publisher"):
                return output.publisher
        raise LookupError("no websocket output")

    def _observe_counts(self) -> None:
        """Export the counts the inference worker and the outputs keep."""
        self.metrics.observe_worker(self.worker)
        for output in self.outputs:
            output.register_metrics(self.metrics)

    def health(self) -> dict[str, Any]:
        """The /healthz document."""
        document: dict[str, Any] = {
            "status": "ok",
            "model": self.model.name,
            "labels": list(self.model.labels),
            "uptime_seconds": round(time.monotonic() - self._started_monotonic, 3),
            "overload_ratio": round(self.worker.load.ratio, 3),
            "window_wait_max_seconds": self.worker.load.wait_max_seconds(),
            "inference": self.model.inference,
            "sources": [
                {"name": name, "kind": rt.config.kind, "state": rt.published_state,
                 "message": rt.message, "windows_classified": rt.windows,
                 "windows_dropped": self.worker.dropped_by_source.get(name, 0),
                 "windows_silent": rt.windower.n_silent_windows,
                 "effective_hop_seconds": self.worker.load.effective_hop_seconds(name),
                 "window_wait_max_seconds": self.worker.load.wait_max_seconds(name),
                 "audio_seconds": round(rt.windower.total_samples / SAMPLE_RATE_HZ, 3)}
                for name, rt in self._runtimes.items()
            ],
        }
        document.update({name: {"state": "disabled"} for name in self._output_names})
        document.update({output.name: output.health() for output in self.outputs})
        return document

    def create_sources(self) -> None:
        """Construct every source (bad device names etc. raise here, before anything starts)."""
        for name, runtime in self._runtimes.items():
            if runtime.source is not None:
                continue
            runtime.source = runtime.config.build(
                lambda state, message, n=name: self._on_source_state(n, state, message))

    async def start_server(self) -> None:
        """Start every output (raises OSError if the server's port is taken)."""
        started: list[Output] = []
        try:
            for output in self.outputs:
                await output.start()
                started.append(output)
        except BaseException:
            for output in reversed(started):
                with contextlib.suppress(Exception):
                    await output.stop()
            raise
        for name, runtime in self._runtimes.items():
            self._publish_state(name, runtime)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every stage until ``stop`` is set, then shut down cleanly."""
        hop = next(iter(self._runtimes.values())).windower.hop_seconds if self._runtimes else 0
        _LOGGER.info("model %s, %d sources, hop %.3f s", self.model.name, len(self._runtimes),
                     hop)
        self.create_sources()
        try:
            async with asyncio.TaskGroup() as group:
                worker_task = group.create_task(self.worker.run(self._on_result))
                pumps = [group.create_task(self._pump(name)) for name in self._runtimes]
                for output in self.outputs:
                    group.create_task(self._run_output(output))
                await stop.wait()
                _LOGGER.info("stopping: closing sources and clients")
                for task in [*pumps, worker_task]:
                    task.cancel()
                await asyncio.gather(self._close_sources(), self._stop_outputs())
        finally:
            self.worker.close()

    async def _run_output(self, output: Output) -> None:
        """Run one output; its failure is logged and never stops the pipeline."""
        try:
            await output.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("output %s failed", output.name)

    async def _stop_outputs(self) -> None:
        """Stop every output at once (each bounded by its own stop: a stalled broker does not
        hold up the server's close)."""
        results = await asyncio.gather(*(output.stop() for output in self.outputs),
                                       return_exceptions=True)
        for output, result in zip(self.outputs, results, strict=True):
            if isinstance(result, Exception):
                _LOGGER.error("output %s did not stop cleanly: %s", output.name, result)

    async def _close_sources(self) -> None:
        """Close every open source at once, each bounded in time."""
        async def close(source: Any) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(source.close(), 3.0)

        await asyncio.gather(*(close(rt.source) for rt in self._runtimes.values()
                               if rt.source is not None))

    async def _pump(self, name: str) -> None:
        """Move one source's chunks through its windower; a failure ends only this source."""
        runtime = self._runtimes[name]
        waits = bool(getattr(runtime.source, "waits_for_consumer", False))  # SourceBase has it
        try:
            async for chunk in runtime.source.chunks():
                kept = chunk if waits else self.phases.trim(name, chunk)
                if kept.shape[0]:
                    self._on_chunk(name, runtime, kept)
                if waits:  # a file read faster than real time: no window dropped
                    await self.worker.wait_slot_free(name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # one failing source never stops the others
            _LOGGER.exception("source %s failed", name)
            self._on_source_state(name, SourceState.ERROR, f"{type(error).__name__}: {error}")

    def _on_chunk(self, name: str, runtime: _SourceRuntime, chunk: np.ndarray) -> None:
        """Feed a chunk; submit a due window or report warm-up/silence."""
        window = runtime.windower.push(chunk)
        if runtime.source_state != SourceState.LIVE:
            self._on_source_state(name, SourceState.LIVE, None)
        if window is None:
            work = runtime.windower.pending_work() if self.model.serving.prefetch else None
            if work is not None:
                self.worker.submit_work(name, work)
            return
        self.spectrograms.on_window(name, window)
        if window.silent:
            runtime.judge.reset()
            runtime.no_music = False
        else:
            self.worker.submit(name, self._job(name, runtime, window))
        self._publish_state(name, runtime, silent=window.silent)
        self._count_overflows(name, runtime)

    def _count_overflows(self, name: str, runtime: _SourceRuntime) -> None:
        """Mirror the source's overflow count into the metrics."""
        overflows = int(getattr(runtime.source, "overflows", 0))
        if overflows > runtime.overflows_seen:
            self.metrics.source_overflows.labels(source=name).inc(
                overflows - runtime.overflows_seen)
            runtime.overflows_seen = overflows

    def _job(self, name: str, runtime: _SourceRuntime, window: Window) -> WindowJob:
        """Wrap a window for the inference worker."""
        return WindowJob(
            source_name=name, features=window.features, window_start_sample=window.start_sample,
            window_end_sample=window.end_sample,
            sample_rate_hz=runtime.windower.sample_rate_hz)

    def _on_source_state(self, name: str, state: str, message: str | None) -> None:
        """A source reported connecting/live/reconnecting/ended/error."""
        runtime = self._runtimes[name]
        runtime.source_state, runtime.message = SourceState(state), redact_optional(message)
        if state != SourceState.LIVE:
            runtime.judge.reset()
        self._publish_state(name, runtime)

    def _publish_state(self, name: str, runtime: _SourceRuntime, silent: bool = False) -> None:
        """Derive the public state (warming_up/silent refine live) and broadcast changes."""
        state = runtime.source_state
        if state == SourceState.LIVE and not runtime.windower.warm:
            state = SourceState.WARMING_UP
        elif state == SourceState.LIVE and silent:
            state = SourceState.SILENT
        elif state == SourceState.LIVE and runtime.no_music:
            state = SourceState.NO_MUSIC
        if state != runtime.published_state:
            runtime.published_state = state
            self.metrics.set_source_state(name, state)
            if state != SourceState.LIVE:
                self.metrics.source_confidence.labels(source=name).set(0.0)
        elif runtime.message == runtime.published_message:
            return
        runtime.published_message = runtime.message  # e.g. the demo's next clip: same state
        status = SourceStatus(name, runtime.config.kind, state, runtime.message)
        for output in self.outputs:
            output.on_state(status)

    def _on_drop(self, name: str) -> None:
        """Metrics hook of the worker: a window of ``name`` was dropped."""
        self.metrics.windows_dropped.labels(source=name).inc()

    def _on_inference(self, seconds: float, batch_size: int) -> None:
        """Metrics hook of the worker."""
        self.metrics.inference_seconds.observe(seconds)
        self._batch_seconds = seconds
        self.metrics.inference_batch_size.observe(batch_size)

    def _on_result(self, job: WindowJob, result: WindowResult) -> None:
        """Judge a window (no music, or smoothed genres) and publish what it says."""
        runtime = self._runtimes[job.source_name]
        runtime.windows += 1
        self.metrics.windows_classified.labels(source=job.source_name).inc()
        self.metrics.source_inference_seconds.labels(source=job.source_name).observe(
            self._batch_seconds)
        verdict = runtime.judge.judge(result, job.window_end_sample)
        runtime.no_music = verdict.no_music
        self._publish_state(job.source_name, runtime)
        if not verdict.no_music:
            self._publish_prediction(job, verdict)

    def _publish_prediction(self, job: WindowJob, verdict: Verdict) -> None:
        """Build the prediction and hand it to every output."""
        rate_hz = job.sample_rate_hz
        span_ms = (job.window_start_sample * 1000 // rate_hz,
                   job.window_end_sample * 1000 // rate_hz)
        prediction = to_prediction(verdict, job.source_name, span_ms, time.time(),
                                   self.model.labels, self.model.name)
        self.metrics.source_confidence.labels(source=job.source_name).set(prediction.confidence)
        if verdict.smoothed is not None and verdict.smoothed.changed:
            self.metrics.label_changes.labels(source=job.source_name).inc()
        for output in self.outputs:
            output.on_prediction(prediction, bool(verdict.smoothed and verdict.smoothed.changed))
