"""Prometheus text exposition: metric semantics and a line-by-line format check."""

from __future__ import annotations

import math
import re
import threading

import pytest

from daemon.messages import SourceState
from daemon.metrics import Counter, DaemonMetrics, Gauge, Histogram, Registry, format_value

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)|[+-]Inf|NaN)"
_SAMPLE_RE = re.compile(rf"^({_NAME})(?:\{{({_LABEL}(?:,{_LABEL})*)?\}})? ({_VALUE})$")
_HELP_RE = re.compile(rf"^# HELP ({_NAME}) .*$")
_TYPE_RE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


def parse_exposition(text: str) -> dict[str, list[tuple[str, str, float]]]:
    """Check every line of text format 0.0.4; return samples grouped by metric family."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[str, str, float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if match := _HELP_RE.match(line):
            assert match.group(1) not in families, f"HELP after samples: {line}"
            continue
        if match := _TYPE_RE.match(line):
            types[match.group(1)] = match.group(2)
            families[match.group(1)] = []
            continue
        match = _SAMPLE_RE.match(line)
        assert match, f"bad exposition line: {line!r}"
        name, labels, value = match.group(1), match.group(2) or "", match.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} before its TYPE line"
        families[family].append((name, labels, float(value.replace("Inf", "inf"))))
    return families


def test_counter_and_labels() -> None:
    counter = Counter("things_total", "Things.", ["source"])
    counter.inc(source="a")
    counter.inc(2.5, source="a")
    counter.inc(source='we"ird\\na\nme')
    assert counter.value(source="a") == 3.5
    assert counter.value(source="never") == 0
    with pytest.raises(ValueError):
        counter.inc(-1, source="a")
    with pytest.raises(ValueError):
        counter.inc(other="x")
    families = parse_exposition(counter.render())
    assert ("things_total", 'source="a"', 3.5) in families["things_total"]
    assert ("things_total", 'source="we\\"ird\\\\na\\nme"', 1.0) in families["things_total"]


def test_unlabelled_metrics_start_at_zero() -> None:
    text = Counter("c_total", "C.").render() + Gauge("g", "G.").render()
    assert "c_total 0\n" in text and "\ng 0\n" in text


def test_gauge_set_inc_dec_and_function() -> None:
    gauge = Gauge("level", "Level.")
    gauge.set(5)
    gauge.inc()
    gauge.dec(3)
    assert gauge.value() == 3
    assert Gauge("computed", "C.", function=lambda: 42.5).value() == 42.5
    with pytest.raises(ValueError):
        Gauge("bad", "B.", ["x"], function=lambda: 1.0)


def test_histogram_buckets_are_cumulative() -> None:
    hist = Histogram("latency_seconds", "Latency.", [0.1, 1.0, 0.5])
    for value in (0.05, 0.1, 0.3, 0.7, 20.0):
        hist.observe(value)
    samples = parse_exposition(hist.render())["latency_seconds"]
    buckets = [(labels, value) for name, labels, value in samples if name.endswith("_bucket")]
    assert buckets == [('le="0.1"', 2), ('le="0.5"', 3), ('le="1"', 4), ('le="+Inf"', 5)]
    assert ("latency_seconds_count", "", 5) in samples
    total = next(v for n, _, v in samples if n == "latency_seconds_sum")
    assert math.isclose(total, 21.15)
    assert hist.count() == 5


def test_format_value() -> None:
    assert [format_value(v) for v in (3.0, 0.25, math.inf, -math.inf)] == \
        ["3", "0.25", "+Inf", "-Inf"]
    assert format_value(math.nan) == "NaN"


def test_registry_rejects_duplicates() -> None:
    registry = Registry()
    registry.register(Counter("x_total", "X."))
    with pytest.raises(ValueError):
        registry.register(Gauge("x_total", "X again."))


def test_daemon_metrics_full_exposition() -> None:
    now = [100.0]
    metrics = DaemonMetrics(clock=lambda: now[0])
    now[0] = 112.5
    metrics.windows_classified.inc(source="mic")
    metrics.windows_dropped.inc(source="mic")
    metrics.inference_seconds.observe(0.02)
    metrics.inference_batch_size.observe(4)
    metrics.clients.inc()
    metrics.client_messages_dropped.inc(7)
    metrics.source_overflows.inc(source="radio")
    metrics.set_source_state("mic", "warming_up")
    metrics.set_source_state("mic", "live")
    families = parse_exposition(metrics.render())
    assert set(families) == {
        "genred_windows_classified_total", "genred_windows_dropped_total",
        "genred_inference_seconds", "genred_inference_batch_size", "genred_clients",
        "genred_client_messages_dropped_total", "genred_source_state",
        "genred_source_overflows_total", "genred_uptime_seconds"}
    assert families["genred_uptime_seconds"] == [("genred_uptime_seconds", "", 12.5)]
    states = {labels: value for _, labels, value in families["genred_source_state"]}
    assert len(states) == len(SourceState)
    assert states['source="mic",state="live"'] == 1
    assert sum(states.values()) == 1
    assert families["genred_client_messages_dropped_total"][0][2] == 7
    buckets = [s for s in families["genred_inference_seconds"] if s[0].endswith("_bucket")]
    assert buckets[0] == ("genred_inference_seconds_bucket", 'le="0.01"', 0)
    assert buckets[-2][1] == 'le="10"'
    with pytest.raises(ValueError):
        metrics.set_source_state("mic", "dancing")


def test_counters_are_thread_safe() -> None:
    counter = Counter("n_total", "N.")

    def work() -> None:
        for _ in range(10000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value() == 40000
