"""Minimal Prometheus text exposition (format 0.0.4) and the daemon's metric set.

Metrics are thread-safe (the inference thread may observe them) and render in registration
order. Label values are passed as keyword arguments: ``counter.inc(source="radio")``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from daemon.messages import SourceState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INFERENCE_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

Sample = tuple[str, tuple[tuple[str, str], ...], float]
_M = TypeVar("_M", bound="_Metric")


def format_value(value: float) -> str:
    """Prometheus sample value: integers without a dot, +Inf/-Inf/NaN spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


class _Metric:
    """Common part: name, help, label names, a lock and per-label-set values."""

    TYPE = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name}: labels must be {self.label_names}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def _pairs(self, key: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.label_names, key, strict=True))

    def samples(self) -> Iterator[Sample]:
        """Yield (sample name, label pairs, value)."""
        raise NotImplementedError

    def render(self) -> str:
        """HELP, TYPE and sample lines of this metric."""
        lines = [f"# HELP {self.name} {_escape_help(self.help_text)}",
                 f"# TYPE {self.name} {self.TYPE}"]
        lines += [f"{name}{_format_labels(labels)} {format_value(value)}"
                  for name, labels, value in self.samples()]
        return "\n".join(lines) + "\n"


class _Scalar(_Metric):
    """One float per label set."""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[tuple[str, ...], float] = {} if label_names else {(): 0.0}

    def _add(self, amount: float, labels: dict[str, str]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """Current value of one series (0 if never touched)."""
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[Sample]:
        """Yield one sample per label set."""
        with self._lock:
            items = list(self._values.items())
        for key, value in items:
            yield self.name, self._pairs(key), value


class Counter(_Scalar):
    """Monotonically increasing count."""

    TYPE = "counter"

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` (>= 0) to the series selected by ``labels``."""
        if amount < 0:
            raise ValueError(f"{self.name}: counters only increase")
        self._add(amount, labels)


class Gauge(_Scalar):
    """Value that goes up and down; optionally computed by ``function`` at render time."""

    TYPE = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = (),
                 function: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, label_names)
        if function is not None and label_names:
            raise ValueError(f"{self.name}: function gauges take no labels")
        self._function = function

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` (may be negative)."""
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, /, **labels: str) -> None:
        """Subtract ``amount``."""
        self.inc(-amount, **labels)

    def set(self, value: float, /, **labels: str) -> None:
        """Set the series selected by ``labels`` to ``value``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def value(self, **labels: str) -> float:
        """Current value (computed for function gauges)."""
        if self._function is not None:
            return float(self._function())
        return super().value(**labels)

    def samples(self) -> Iterator[Sample]:
        """Yield one sample per label set."""
        if self._function is not None:
            yield self.name, (), float(self._function())
            return
        yield from super().samples()


class Histogram(_Metric):
    """Distribution over fixed upper bounds ``buckets`` (le), plus _sum and _count."""

    TYPE = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float],
                 label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        bounds = sorted({float(b) for b in buckets if not math.isinf(float(b))})
        self.buckets = (*bounds, math.inf)
        self._series: dict[tuple[str, ...], list[float]] = {}
        if not label_names:
            self._series[()] = self._empty()

    def _empty(self) -> list[float]:
        """Per-bucket (non-cumulative) counts, then sum."""
        return [0.0] * (len(self.buckets) + 1)

    def observe(self, value: float, /, **labels: str) -> None:
        """Record one observation."""
        key = self._key(labels)
        index = next(i for i, bound in enumerate(self.buckets) if value <= bound)
        with self._lock:
            series = self._series.setdefault(key, self._empty())
            series[index] += 1
            series[-1] += value

    def count(self, **labels: str) -> int:
        """Number of observations of one series."""
        with self._lock:
            series = self._series.get(self._key(labels))
            return 0 if series is None else int(sum(series[:-1]))

    def samples(self) -> Iterator[Sample]:
        """Yield cumulative _bucket samples, then _sum and _count, per label set."""
        with self._lock:
            items = [(key, list(series)) for key, series in self._series.items()]
        for key, series in items:
            pairs = self._pairs(key)
            cumulative = 0.0
            for bound, count in zip(self.buckets, series[:-1], strict=True):
                cumulative += count
                yield f"{self.name}_bucket", pairs + (("le", format_value(bound)),), cumulative
            yield f"{self.name}_sum", pairs, series[-1]
            yield f"{self.name}_count", pairs, cumulative


class Registry:
    """Ordered set of metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _M) -> _M:
        """Add ``metric`` (unique name) and return it."""
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} already registered")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        """The whole registry in Prometheus text format 0.0.4."""
        return "".join(metric.render() for metric in self._metrics.values())


class DaemonMetrics:
    """All metrics the daemon exports on /metrics."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        started_s = clock()
        reg = self.registry = Registry()
        self.windows_classified = reg.register(Counter(
            "genred_windows_classified_total", "Audio windows classified.", ["source"]))
        self.windows_dropped = reg.register(Counter(
            "genred_windows_dropped_total", "Audio windows dropped before inference.", ["source"]))
        self.inference_seconds = reg.register(Histogram(
            "genred_inference_seconds", "Wall time of one inference batch in seconds.",
            INFERENCE_SECONDS_BUCKETS))
        self.inference_batch_size = reg.register(Histogram(
            "genred_inference_batch_size", "Windows per inference batch.", BATCH_SIZE_BUCKETS))
        self.clients = reg.register(Gauge("genred_clients", "Connected WebSocket clients."))
        self.client_messages_dropped = reg.register(Counter(
            "genred_client_messages_dropped_total",
            "Messages dropped (oldest first) because a client read too slowly."))
        self.source_state = reg.register(Gauge(
            "genred_source_state", "1 for the current state of each source, else 0.",
            ["source", "state"]))
        self.source_overflows = reg.register(Counter(
            "genred_source_overflows_total", "Audio buffer overflows per source.", ["source"]))
        self.uptime_seconds = reg.register(Gauge(
            "genred_uptime_seconds", "Seconds since the daemon started.",
            function=lambda: clock() - started_s))

    def set_source_state(self, source: str, state: str) -> None:
        """Mark ``state`` as the current state of ``source`` (1) and the others 0."""
        state = SourceState(state)
        for candidate in SourceState:
            self.source_state.set(1.0 if candidate == state else 0.0, source=source,
                                  state=str(candidate))

    def render(self) -> str:
        """Prometheus text of all daemon metrics."""
        return self.registry.render()
