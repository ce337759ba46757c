"""The daemon's /metrics: every family, one-hot source states, counts read from their owners."""

from __future__ import annotations

import pytest

from daemon.config import config_from_dict
from daemon.harness import fake_model, metric, metric_samples
from daemon.messages import SourceState
from daemon.metrics import DaemonMetrics
from daemon.service import Service


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
    service = Service(config, fake_model())
    service.worker.errors, service.worker.windows_failed = 2, 5
    service.publisher.messages_dropped = 3
    text = service.metrics.render().decode()
    assert metric(text, "genred_inference_errors_total") == 2
    assert metric(text, "genred_windows_failed_total") == 5
    assert metric(text, "genred_client_messages_dropped_total") == 3
    assert metric(text, "genred_clients") == 0
