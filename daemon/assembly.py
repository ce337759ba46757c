"""Where the daemon is put together: the table of outputs, and the service built from them.

Adding an output is one module (an :class:`~daemon.output.Output` subclass and a factory)
plus one line in :data:`OUTPUTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.config import Config
from daemon.metrics import DaemonMetrics
from daemon.output import OutputFactory
from daemon.outputs import history_output, mqtt_output, websocket_output
from daemon.service import ModelHandle, Service
from daemon.terminal import terminal_output

OUTPUTS: tuple[tuple[str, OutputFactory], ...] = (
    ("history", history_output),
    ("mqtt", mqtt_output),
    ("websocket", websocket_output),
    ("terminal", terminal_output),
)
"""(name, factory) of every output, in delivery order; the history output comes before the
WebSocket server, which serves its GET /history."""


def build_service(config: Config, model: ModelHandle, metrics: DaemonMetrics | None = None,
                  outputs: Sequence[tuple[str, OutputFactory]] = OUTPUTS,
                  **options: Any) -> Service:
    """The daemon's service with the outputs the config turns on (``options``: CLI flags)."""
    return Service(config, model, metrics=metrics, outputs=outputs, options=options)
