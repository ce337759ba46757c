"""The daemon's Prometheus metrics (prometheus_client), written by the service only.

Counts kept by other stages (connected clients, messages dropped for slow clients, failed
inference batches) are read from them when /metrics is scraped, so each count has one owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.messages import SourceState
from daemon.overload import LoadCollector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
INFERENCE_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

disable_created_metrics()  # no *_created series: the exposition stays as it was


class _ObservedCounters(Collector):
    """Counters whose values another stage keeps, read at scrape time."""

    def __init__(self) -> None:
        self._counters: list[tuple[str, str, Callable[[], float]]] = []

    def add(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Export ``read()`` as counter ``name``_total."""
        self._counters.append((name, help_text, read))

    def collect(self) -> Iterator[Metric]:
        """One counter family per registered reader."""
        for name, help_text, read in self._counters:
            yield CounterMetricFamily(name, help_text, value=float(read()))


class DaemonMetrics:
    """All metrics the daemon exports on /metrics."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        started_s = clock()
        self.registry = CollectorRegistry()
        registry = self.registry
        self.windows_classified = Counter(
            "genred_windows_classified", "Audio windows classified.", ["source"],
            registry=registry)
        self.windows_dropped = Counter(
            "genred_windows_dropped", "Audio windows dropped before inference.", ["source"],
            registry=registry)
        self.inference_seconds = Histogram(
            "genred_inference_seconds", "Wall time of one inference batch in seconds.",
            buckets=INFERENCE_SECONDS_BUCKETS, registry=registry)
        self.source_inference_seconds = Histogram(
            "genred_source_inference_seconds",
            "Wall time in seconds of the inference batch that classified each window, by source.",
            ["source"], buckets=INFERENCE_SECONDS_BUCKETS, registry=registry)
        self.source_confidence = Gauge(
            "genred_source_confidence",
            "Smoothed confidence (0-1) of the current genre of each source; 0 when not live.",
            ["source"], registry=registry)
        self.label_changes = Counter(
            "genred_label_changes", "Changes of the smoothed genre label, by source.",
            ["source"], registry=registry)
        self.inference_batch_size = Histogram(
            "genred_inference_batch_size", "Windows per inference batch.",
            buckets=BATCH_SIZE_BUCKETS, registry=registry)
        self.clients = Gauge("genred_clients", "Connected WebSocket clients.", registry=registry)
        self.source_state = Gauge(
            "genred_source_state", "1 for the current state of each source, else 0.",
            ["source", "state"], registry=registry)
        self.source_overflows = Counter(
            "genred_source_overflows", "Audio buffer overflows per source.", ["source"],
            registry=registry)
        self.uptime_seconds = Gauge("genred_uptime_seconds", "Seconds since the daemon started.",
                                    registry=registry)
        self.uptime_seconds.set_function(lambda: clock() - started_s)
        self._observed = _ObservedCounters()
        registry.register(self._observed)

    def observe_counter(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Export a count another stage keeps (read at scrape time) as ``name``_total."""
        self._observed.add(name, help_text, read)

    def observe_worker(self, worker: Any) -> None:
        """Export the inference worker's counts and its load monitor (daemon/classifier.py)."""
        self.observe_counter("genred_inference_errors", "Inference batches that failed.",
                             lambda: worker.errors)
        self.observe_counter("genred_windows_failed", "Windows in failed inference batches.",
                             lambda: worker.windows_failed)
        self.observe_counter("genred_inference_callback_errors",
                             "Result callbacks that raised (logged and survived).",
                             lambda: worker.callback_errors)
        self.registry.register(LoadCollector(worker.load))

    def add_source(self, source: str) -> None:
        """Every per-source series of ``source`` at 0 from its start (a rate needs a 0)."""
        for labelled in (self.windows_classified, self.windows_dropped, self.label_changes,
                         self.source_overflows, self.source_inference_seconds,
                         self.source_confidence):
            labelled.labels(source=source)
        self.set_source_state(source, SourceState.CONNECTING)

    def set_source_state(self, source: str, state: str) -> None:
        """Mark ``state`` as the current state of ``source`` (1) and the others 0."""
        state = SourceState(state)
        for candidate in SourceState:
            self.source_state.labels(source=source, state=str(candidate)).set(
                1.0 if candidate == state else 0.0)

    def render(self) -> bytes:
        """Prometheus text (format 0.0.4) of all daemon metrics."""
        return generate_latest(self.registry)
