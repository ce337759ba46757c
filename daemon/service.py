"""Wires the pipeline: sources -> windowers -> inference worker -> smoothers -> publisher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daemon.change import ChangeDetector, change_detector
from daemon.classifier import InferenceWorker, WindowJob
from daemon.config import Config
from daemon.history import History
from daemon.history_query import query_from_params
from daemon.messages import Prediction, SourceState
from daemon.metrics import DaemonMetrics
from daemon.mqtt import MqttPublisher
from daemon.publisher import Publisher
from daemon.redact import redact_optional
from daemon.smoother import Smoother
from daemon.sources import SourceConfig
from daemon.spectrogram import Spectrograms
from daemon.windower import Window, Windower
from models.features import FeatureExtractor
from models.outcome import NO_MUSIC_THRESHOLD, split_outputs
from models.resample import SAMPLE_RATE_HZ

_LOGGER = logging.getLogger(__name__)

@dataclass
class ModelHandle:
    """What the service needs of a model: name, labels, an extractor per source, a batch call.

    ``predict_batch`` maps ``collate(features of N windows)`` to outputs (N, n_labels) or, for
    a model with a no-music output, (N, n_labels + 1) whose last column is the no-music
    probability; it runs on the inference thread. The model kind chooses all three
    (models/serving.py).
    """

    name: str
    labels: Sequence[str]
    new_extractor: Callable[[], FeatureExtractor]
    predict_batch: Callable[[Any], np.ndarray]
    collate: Callable[[list[Any]], Any] = np.stack
    prefetch: Callable[[list[Any]], Any] | None = None
    """Work ahead of windows on the inference thread (patch models: encode new patches)."""
    patch_scores: int = 0
    """Patches whose scores follow the outputs in each row (daemon/change.py; 0: none)."""

    def windower(self, hop_seconds: float, silence_rms_dbfs: float) -> Windower:
        """A fresh windower with this model's feature extractor."""
        return Windower(self.new_extractor(), SAMPLE_RATE_HZ, hop_seconds, silence_rms_dbfs)


@dataclass
class _SourceRuntime:
    """Per-source pipeline state."""

    config: SourceConfig
    windower: Windower
    smoother: Smoother
    source: Any = None
    source_state: SourceState = SourceState.CONNECTING
    published_state: SourceState | None = None
    published_message: str | None = None
    message: str | None = None
    windows: int = 0
    overflows_seen: int = 0
    no_music: bool = False
    """Whether the newest classified window was no music."""
    change: ChangeDetector | None = None
    """Early genre changes from the patch scores (patch-head models)."""


class Service:
    """The genred daemon's pipeline, run until ``stop`` is set."""

    def __init__(self, config: Config, model: ModelHandle,
                 metrics: DaemonMetrics | None = None) -> None:
        self.config = config
        self.model = model
        self.metrics = metrics or DaemonMetrics()
        self._started_monotonic = time.monotonic()
        self._runtimes = {
            s.name: _SourceRuntime(
                config=s,
                windower=model.windower(config.window.hop_seconds,
                                        config.window.silence_rms_dbfs),
                smoother=Smoother(len(model.labels), config.smoothing),
            )
            for s in config.sources
        }
        for runtime in self._runtimes.values():
            runtime.change = change_detector(config.smoothing, len(model.labels),
                                             model.patch_scores, runtime.windower.extractor)
        self._batch_seconds = 0.0
        """Wall time of the inference batch whose results are being delivered."""
        self.worker = InferenceWorker(model.predict_batch,
                                      max_batch_size=config.inference.max_batch_size,
                                      on_inference=self._on_inference, collate=model.collate,
                                      on_drop=self._on_drop, prefetch=model.prefetch)
        self.history = History(config.history) if config.history.enabled else None
        self.mqtt = (MqttPublisher(config.mqtt, sources=list(self._runtimes),
                                   model_name=model.name) if config.mqtt.url else None)
        self.spectrograms = Spectrograms({n: rt.windower for n, rt in self._runtimes.items()})
        self.publisher = Publisher(config.server, model_name=model.name, labels=model.labels,
                                   metrics=self.metrics, health=self.health,
                                   history=self._query_history if self.history else None,
                                   spectrogram=self.spectrograms.response)
        self._observe_counts()

    def _observe_counts(self) -> None:
        """Export the counts the publisher and the inference worker keep."""
        metrics, publisher, worker = self.metrics, self.publisher, self.worker
        metrics.clients.set_function(lambda: publisher.n_clients)
        metrics.observe_counter(
            "genred_client_messages_dropped",
            "Messages dropped (oldest first) because a client read too slowly.",
            lambda: publisher.messages_dropped)
        metrics.observe_counter("genred_inference_errors", "Inference batches that failed.",
                                lambda: worker.errors)
        metrics.observe_counter("genred_windows_failed", "Windows in failed inference batches.",
                                lambda: worker.windows_failed)
        metrics.observe_counter("genred_inference_callback_errors",
                                "Result callbacks that raised (logged and survived).",
                                lambda: worker.callback_errors)
        if self.history is not None:
            history = self.history
            metrics.observe_counter(
                "genred_history_rows_lost",
                "History rows not stored (writer behind, or the write failed).",
                lambda: history.rows_dropped + history.rows_failed)
        if self.mqtt is not None:
            mqtt = self.mqtt
            metrics.observe_counter(
                "genred_mqtt_messages_dropped",
                "MQTT messages dropped (oldest first) while the broker was unreachable.",
                lambda: mqtt.messages_dropped)

    def health(self) -> dict[str, Any]:
        """The /healthz document."""
        return {
            "status": "ok",
            "model": self.model.name,
            "labels": list(self.model.labels),
            "uptime_seconds": round(time.monotonic() - self._started_monotonic, 3),
            "sources": [
                {"name": name, "kind": rt.config.kind, "state": rt.published_state,
                 "message": rt.message, "windows_classified": rt.windows,
                 "windows_dropped": self.worker.dropped_by_source.get(name, 0),
                 "audio_seconds": round(rt.windower.total_samples / SAMPLE_RATE_HZ, 3)}
                for name, rt in self._runtimes.items()
            ],
            "history": self.history.health() if self.history else {"state": "disabled"},
            "mqtt": self.mqtt.health() if self.mqtt else {"state": "disabled"},
        }

    async def _query_history(self, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """GET /history: rows from the history database (ValueError on bad parameters)."""
        assert self.history is not None
        return await asyncio.to_thread(self.history.query, **query_from_params(params))

    def create_sources(self) -> None:
        """Construct every source (bad device names etc. raise here, before anything starts)."""
        for name, runtime in self._runtimes.items():
            if runtime.source is not None:
                continue
            runtime.source = runtime.config.build(
                lambda state, message, n=name: self._on_source_state(n, state, message))

    async def start_server(self) -> None:
        """Bind the WebSocket/HTTP server (raises OSError if the port is taken)."""
        await self.publisher.start()
        for name, runtime in self._runtimes.items():
            self._publish_state(name, runtime)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every stage until ``stop`` is set, then shut down cleanly."""
        hop = next(iter(self._runtimes.values())).windower.hop_seconds if self._runtimes else 0
        _LOGGER.info("model %s, %d sources, hop %.3f s", self.model.name, len(self._runtimes),
                     hop)
        self.create_sources()
        if self.history:
            self.history.start()
        try:
            async with asyncio.TaskGroup() as group:
                worker_task = group.create_task(self.worker.run(self._on_result))
                pumps = [group.create_task(self._pump(name)) for name in self._runtimes]
                mqtt = [group.create_task(self.mqtt.run())] if self.mqtt else []
                await stop.wait()
                _LOGGER.info("stopping: closing sources and clients")
                await self._close_sources()
                await self._stop_mqtt(mqtt)
                for task in [*pumps, worker_task]:
                    task.cancel()
        finally:
            self.worker.close()
            await self.publisher.close()
            if self.history:
                await asyncio.to_thread(self.history.close)

    async def _stop_mqtt(self, tasks: list[asyncio.Task]) -> None:
        """Let the MQTT output publish ``offline`` (bounded in time), then cancel it."""
        if self.mqtt is None:
            return
        self.mqtt.stop()
        await asyncio.wait(tasks, timeout=3.0)
        for task in tasks:
            task.cancel()

    async def _close_sources(self) -> None:
        """Close every open source, each bounded in time."""
        for runtime in self._runtimes.values():
            if runtime.source is None:
                continue
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime.source.close(), 3.0)

    async def _pump(self, name: str) -> None:
        """Move one source's chunks through its windower; a failure ends only this source."""
        runtime = self._runtimes[name]
        try:
            async for chunk in runtime.source.chunks():
                self._on_chunk(name, runtime, chunk)
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
            work = runtime.windower.pending_work() if self.model.prefetch else None
            if work is not None:
                self.worker.submit_work(name, work)
            return
        self.spectrograms.on_window(name, window)
        if window.silent:
            runtime.smoother.reset()
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
            runtime.smoother.reset()
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
        self.publisher.set_source_state(name, runtime.config.kind, state, runtime.message)

    def _on_drop(self, name: str) -> None:
        """Metrics hook of the worker: a window of ``name`` was dropped."""
        self.metrics.windows_dropped.labels(source=name).inc()

    def _on_inference(self, seconds: float, batch_size: int) -> None:
        """Metrics hook of the worker."""
        self.metrics.inference_seconds.observe(seconds)
        self._batch_seconds = seconds
        self.metrics.inference_batch_size.observe(batch_size)

    def _on_result(self, job: WindowJob, outputs: np.ndarray) -> None:
        """Smooth a window's genre probabilities and publish the prediction (or no_music)."""
        runtime = self._runtimes[job.source_name]
        runtime.windows += 1
        self.metrics.windows_classified.labels(source=job.source_name).inc()
        self.metrics.source_inference_seconds.labels(source=job.source_name).observe(
            self._batch_seconds)
        labels, to_smooth, moved = self.model.labels, outputs, False
        if runtime.change is not None:
            outputs, to_smooth, moved = runtime.change.update(
                outputs, job.window_end_sample, runtime.smoother.label_index)
        elif self.model.patch_scores:  # change_patches: 0: the window's outputs alone
            outputs = to_smooth = outputs[:outputs.shape[0] // (self.model.patch_scores + 1)]
        genres, no_music = split_outputs(outputs[np.newaxis], len(labels))
        runtime.no_music = bool(no_music[0] >= NO_MUSIC_THRESHOLD)
        self._publish_state(job.source_name, runtime)
        if runtime.no_music:
            runtime.smoother.reset()
            return
        probabilities = genres[0]
        if moved:
            runtime.smoother.reset()  # a genre change in the newest patches: follow it now
        smoothed = runtime.smoother.update(split_outputs(to_smooth[np.newaxis], len(labels))[0][0])
        rate_hz = job.sample_rate_hz
        prediction = Prediction(
            source=job.source_name,
            window_start_ms=job.window_start_sample * 1000 // rate_hz,
            window_end_ms=job.window_end_sample * 1000 // rate_hz,
            wall_time=time.time(),
            genre=labels[smoothed.label_index],
            confidence=round(float(smoothed.confidence), 4),
            probabilities={lb: round(float(p), 4) for lb, p in zip(labels, smoothed.probabilities,
                                                                   strict=True)},
            raw_probabilities={lb: round(float(p), 4) for lb, p in zip(labels, probabilities,
                                                                       strict=True)},
            model=self.model.name,
        )
        self.publisher.publish_prediction(prediction)
        self.metrics.source_confidence.labels(source=job.source_name).set(prediction.confidence)
        if smoothed.changed:
            self.metrics.label_changes.labels(source=job.source_name).inc()
        if self.history:
            self.history.record(prediction, smoothed.changed)
        if self.mqtt:
            self.mqtt.publish_prediction(prediction, smoothed.changed)
