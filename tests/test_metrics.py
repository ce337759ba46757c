"""The daemon's /metrics: every family, one-hot source states, counts read from their owners."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.harness import (
    REPO_ROOT,
    DaemonProcess,
    fake_model,
    free_port,
    http_get,
    metric,
    metric_samples,
)
from daemon.messages import SourceState
from daemon.metrics import DaemonMetrics
from tests.real_helpers import daemon_process, write_config


def test_daemon_metrics_full_exposition() -> None:
    now = [100.0]
    metrics = DaemonMetrics(clock=lambda: now[0])
    now[0] = 112.5
    metrics.windows_classified.labels(source="mic").inc()
    metrics.windows_dropped.labels(source="mic").inc()
    metrics.inference_seconds.observe(0.02)
    metrics.inference_batch_size.observe(4)
    metrics.clients.inc()
    metrics.observe_counter("genred_client_messages_dropped", "Dropped.", lambda: 7)
    metrics.source_overflows.labels(source="radio").inc()
    metrics.set_source_state("mic", "warming_up")
    metrics.set_source_state("mic", "live")
    samples = metric_samples(metrics.render().decode())
    assert set(samples) == {
        "genred_windows_classified_total", "genred_windows_dropped_total",
        "genred_inference_seconds_bucket", "genred_inference_seconds_sum",
        "genred_inference_seconds_count", "genred_inference_batch_size_bucket",
        "genred_inference_batch_size_sum", "genred_inference_batch_size_count",
        "genred_clients", "genred_client_messages_dropped_total", "genred_source_state",
        "genred_source_overflows_total", "genred_uptime_seconds"}
    assert samples["genred_uptime_seconds"] == [({}, 12.5)]
    states = {labels["state"]: value for labels, value in samples["genred_source_state"]
              if labels["source"] == "mic"}
    assert len(states) == len(SourceState)
    assert states["live"] == 1
    assert sum(states.values()) == 1
    assert samples["genred_client_messages_dropped_total"] == [({}, 7)]
    buckets = samples["genred_inference_seconds_bucket"]
    assert buckets[0] == ({"le": "0.01"}, 0)
    assert float(buckets[-2][0]["le"]) == 10
    with pytest.raises(ValueError):
        metrics.set_source_state("mic", "dancing")


def test_service_exports_the_counts_other_stages_keep() -> None:
    config = config_from_dict({"server": {"port": 0}})
    service = build_service(config, fake_model())
    service.worker.errors, service.worker.windows_failed = 2, 5
    service.publisher.messages_dropped = 3
    text = service.metrics.render().decode()
    assert metric(text, "genred_inference_errors_total") == 2
    assert metric(text, "genred_windows_failed_total") == 5
    assert metric(text, "genred_client_messages_dropped_total") == 3
    assert metric(text, "genred_clients") == 0


PER_SOURCE_SERIES = ("genred_windows_classified_total", "genred_windows_dropped_total",
                     "genred_label_changes_total", "genred_source_overflows_total",
                     "genred_source_inference_seconds_count", "genred_source_confidence")


def test_every_per_source_series_is_0_from_the_source_start() -> None:
    config = config_from_dict({"server": {"port": 0}, "history": {"enabled": False},
                               "sources": [{"name": "radio", "kind": "demo"}]})
    samples = metric_samples(build_service(config, fake_model()).metrics.render().decode())
    for name in PER_SOURCE_SERIES:
        assert samples[name] == [({"source": "radio"}, 0.0)], name
    states = {labels["state"]: value for labels, value in samples["genred_source_state"]}
    assert states["connecting"] == 1 and sum(states.values()) == 1


def _wait_metrics(daemon: DaemonProcess, port: int, sources: tuple[str, ...],
                  timeout_seconds: float) -> str:
    """/metrics once every source has a classified window (fails after the timeout)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        text = http_get(port, "/metrics")
        counts = {labels.get("source"): value for labels, value in
                  metric_samples(text).get("genred_windows_classified_total", [])}
        if all(counts.get(source, 0) >= 1 for source in sources):
            return text
        assert time.monotonic() < deadline, f"no window classified:\n{text}\n{daemon.log()}"
        time.sleep(0.5)


def test_per_source_metrics_from_a_running_daemon_pass_promtool(tmp_path: Path) -> None:
    """Per-source inference time, confidence and label changes; promtool accepts /metrics."""
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default", port,
                          [{"name": "one", "kind": "demo"}, {"name": "two", "kind": "demo"}],
                          history={"enabled": False})
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        daemon.wait_ready_blocking(port, 60)
        text = _wait_metrics(daemon, port, ("one", "two"), 60)
    samples = metric_samples(text)
    for source in ("one", "two"):
        def value(name: str, source: str = source) -> float:
            return sum(v for labels, v in samples[name] if labels.get("source") == source)

        assert value("genred_source_inference_seconds_count") >= 1
        assert value("genred_source_inference_seconds_sum") > 0
        assert 0 < value("genred_source_confidence") <= 1
        assert value("genred_label_changes_total") >= 1  # the first label is a change
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; scripts/dev test)")
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
