"""Overload: how far work outruns the inference thread, and how much each source slowed down.

The inference worker (daemon/classifier.py) reports every item it is given (a window or a
work item), every item it sheds (replaced by a newer one of the same source before it ran),
every batch (items run, busy seconds) and every classified window. From these:

* :attr:`LoadMonitor.ratio`: demand / capacity over the last ``span_seconds``, i.e. items
  arriving per second times the inference thread's seconds per item run. Below 1 it is the
  thread's busy share; above 1 the worker sheds: at 1.5 work arrives 1.5x as fast as it can be
  done, and since sources are served round-robin, every source's effective hop grows ~1.5x;
* :meth:`LoadMonitor.effective_hop_seconds`: audio seconds between a source's classified
  windows, over its last ``HOP_HISTORY`` (the configured hop while nothing is shed);
* one warning when shedding starts and one line when nothing was shed for ``calm_seconds``.

* :meth:`LoadMonitor.wait_max_seconds`: the longest a window waited for its batch over the
  span (near one hop, windows are about to be shed).

Exported as ``genred_overload_ratio``, ``genred_window_wait_max_seconds`` and
``genred_source_effective_hop_seconds{source}``
(:class:`LoadCollector`) and in /healthz.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LOGGER = logging.getLogger(__name__)

HOP_HISTORY = 8
"""Classified windows per source the effective hop is averaged over."""


class LoadMonitor:
    """Demand / capacity of the inference thread, shedding episodes and effective hops."""

    def __init__(self, span_seconds: float = 30.0, calm_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._span_seconds = span_seconds
        self._calm_seconds = calm_seconds
        self._clock = clock
        self._started = clock()
        self._batches: deque[tuple[float, int, int, float]] = deque()
        """(time, items arrived since the previous batch, items run, busy seconds)."""
        self._arrived = 0
        self._ends: dict[str, tuple[int, deque[int]]] = {}
        """Per source: (sample rate, end samples of its newest classified windows)."""
        self.items_shed = 0
        """Items (windows or work) shed since the start."""
        self._shedding_since: float | None = None
        self._last_shed = 0.0
        self._episode_shed = 0
        self._waits: dict[str, deque[tuple[float, float]]] = {}
        """Per source: (time taken, seconds its window waited) over the last span."""

    @property
    def shedding(self) -> bool:
        """True from the first shed item until ``calm_seconds`` pass without one."""
        return self._shedding_since is not None

    def on_arrival(self) -> None:
        """An item (window or work) was handed to the worker."""
        self._arrived += 1

    def on_shed(self, source: str) -> None:
        """An item of ``source`` was replaced before it ran."""
        now = self._clock()
        self.items_shed += 1
        self._episode_shed += 1
        self._last_shed = now
        if self._shedding_since is None:
            self._shedding_since = now
            ratio = self.ratio
            _LOGGER.warning("overload (%s): shedding work, every source's hop grows alike "
                            "(first: %s)", f"load ratio {ratio:.2f}" if ratio else
                            "first batch still running", source)

    def on_batch(self, n_items: int, busy_seconds: float) -> None:
        """The inference thread ran ``n_items`` items in ``busy_seconds``."""
        now = self._clock()
        self._batches.append((now, self._arrived, n_items, busy_seconds))
        self._arrived = 0
        while self._batches and self._batches[0][0] < now - self._span_seconds:
            self._batches.popleft()
        if self._shedding_since is not None and now - self._last_shed >= self._calm_seconds:
            _LOGGER.info("overload over: shedding ended after %.0f s (%d items shed; load "
                         "ratio now %.2f)", self._last_shed - self._shedding_since,
                         self._episode_shed, self.ratio)
            self._shedding_since, self._episode_shed = None, 0

    def on_taken(self, source: str, wait_seconds: float) -> None:
        """A window of ``source`` went into a batch after waiting ``wait_seconds``."""
        now = self._clock()
        waits = self._waits.setdefault(source, deque())
        waits.append((now, wait_seconds))
        while waits[0][0] < now - self._span_seconds:
            waits.popleft()

    def wait_max_seconds(self, source: str | None = None) -> float | None:
        """Longest wait of a window (of ``source``, or of any) between its arrival and its
        batch over the last span: at one hop, the next window replaces it (None: no window)."""
        since = self._clock() - self._span_seconds
        names = self._waits if source is None else [source]
        waits = [wait for name in names for taken, wait in self._waits.get(name, ())
                 if taken >= since]
        return round(max(waits), 4) if waits else None

    def on_classified(self, source: str, end_sample: int, sample_rate_hz: int) -> None:
        """A window of ``source`` ending at ``end_sample`` was classified."""
        _rate, ends = self._ends.setdefault(source, (sample_rate_hz, deque(maxlen=HOP_HISTORY)))
        ends.append(end_sample)

    @property
    def ratio(self) -> float:
        """Demand / capacity over the last span (0.0 before the first batch)."""
        arrived = self._arrived + sum(batch[1] for batch in self._batches)
        ran = sum(batch[2] for batch in self._batches)
        busy_seconds = sum(batch[3] for batch in self._batches)
        elapsed = min(self._span_seconds, self._clock() - self._started)
        if ran == 0 or elapsed <= 0:
            return 0.0
        return arrived / elapsed * busy_seconds / ran

    def effective_hop_seconds(self, source: str) -> float | None:
        """Mean audio seconds between ``source``'s newest classified windows (None: < 2)."""
        rate, ends = self._ends.get(source, (1, deque()))
        if len(ends) < 2:
            return None
        return (ends[-1] - ends[0]) / (len(ends) - 1) / rate

    def effective_hops(self) -> dict[str, float]:
        """Effective hop seconds of every source with two classified windows or more."""
        hops = {name: self.effective_hop_seconds(name) for name in self._ends}
        return {name: hop for name, hop in hops.items() if hop is not None}


class LoadCollector(Collector):
    """The monitor's overload ratio and per-source effective hops, read at scrape time."""

    def __init__(self, monitor: LoadMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[Metric]:
        """genred_overload_ratio, genred_window_wait_max_seconds and
        genred_source_effective_hop_seconds{source}."""
        yield GaugeMetricFamily(
            "genred_overload_ratio", "Work arriving / work the inference thread can do (over "
            "30 s); above 1 every source's hop grows alike.", value=self._monitor.ratio)
        yield GaugeMetricFamily(
            "genred_window_wait_max_seconds", "Longest wait of a window for its inference "
            "batch over the last 30 s (a window waiting one hop is shed).",
            value=self._monitor.wait_max_seconds() or 0.0)
        hops = GaugeMetricFamily(
            "genred_source_effective_hop_seconds",
            "Audio seconds between a source's classified windows (its last 8).",
            labels=["source"])
        for name, hop in self._monitor.effective_hops().items():
            hops.add_metric([name], hop)
        yield hops
