"""The daemon's outputs in the one :class:`~daemon.output.Output` shape, and their factories.

Each factory builds its output from the context, or returns None when the config leaves it
off; ``daemon.assembly.OUTPUTS`` lists them in delivery order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from daemon.history import History
from daemon.history_query import query_from_params
from daemon.messages import Prediction
from daemon.metrics import DaemonMetrics
from daemon.mqtt import MqttPublisher
from daemon.output import Output, OutputContext, SourceStatus
from daemon.publisher import Publisher

_LOGGER = logging.getLogger(__name__)

MQTT_STOP_SECONDS = 3.0
"""Longest wait for the MQTT output to publish ``offline`` on stop."""


class WebSocketOutput(Output):
    """WebSocket events and the HTTP routes (daemon/publisher.py)."""

    name = "websocket"

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def start(self) -> None:
        """Bind the server (OSError when the port is taken)."""
        await self.publisher.start()

    async def stop(self) -> None:
        """Close every client and the server."""
        await self.publisher.close()

    def on_state(self, status: SourceStatus) -> None:
        """Broadcast a ``status`` event."""
        self.publisher.set_source_state(status.source, status.kind, status.state,
                                        status.message)

    def on_prediction(self, prediction: Prediction, changed: bool) -> None:
        """Broadcast a ``prediction`` event."""
        self.publisher.publish_prediction(prediction)

    def health(self) -> dict[str, Any]:
        """Connected clients and drops."""
        return {"state": "ok", "clients": self.publisher.n_clients,
                "messages_dropped": self.publisher.messages_dropped}

    def register_metrics(self, metrics: DaemonMetrics) -> None:
        """Clients and slow-client drops."""
        publisher = self.publisher
        metrics.clients.set_function(lambda: publisher.n_clients)
        metrics.observe_counter(
            "genred_client_messages_dropped",
            "Messages dropped (oldest first) because a client read too slowly.",
            lambda: publisher.messages_dropped)


class HistoryOutput(Output):
    """Every prediction in SQLite (daemon/history.py); GET /history reads it."""

    name = "history"

    def __init__(self, history: History) -> None:
        self.history = history

    async def start(self) -> None:
        """Start the writer thread (it opens the database)."""
        self.history.start()

    async def stop(self) -> None:
        """Commit what is queued and stop the writer (off the event loop)."""
        await asyncio.to_thread(self.history.close)

    def on_prediction(self, prediction: Prediction, changed: bool) -> None:
        """Queue the row (never blocks)."""
        self.history.record(prediction, changed)

    def health(self) -> dict[str, Any]:
        """State, path and row counts."""
        return self.history.health()

    def register_metrics(self, metrics: DaemonMetrics) -> None:
        """Rows lost."""
        history = self.history
        metrics.observe_counter(
            "genred_history_rows_lost",
            "History rows not stored (writer behind, or the write failed).",
            lambda: history.rows_dropped + history.rows_failed)

    async def query(self, params: dict[str, list[str]]) -> Any:
        """GET /history: rows from the database (ValueError on bad parameters)."""
        return await asyncio.to_thread(self.history.query, **query_from_params(params))


class MqttOutput(Output):
    """Source states and label changes to an MQTT broker, Home Assistant discovery."""

    name = "mqtt"

    def __init__(self, mqtt: MqttPublisher) -> None:
        self.mqtt = mqtt
        self._task: asyncio.Task | None = None

    async def run(self) -> None:
        """Connect, deliver and reconnect until stopped."""
        self._task = asyncio.current_task()
        await self.mqtt.run()

    async def stop(self) -> None:
        """Publish ``offline`` (bounded in time); the run task ends with it or is cancelled."""
        self.mqtt.stop()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait([task], timeout=MQTT_STOP_SECONDS)
            if not done:
                task.cancel()

    def on_state(self, status: SourceStatus) -> None:
        """Show silent / no music / unavailable for the source."""
        self.mqtt.publish_source_state(status.source, status.state)

    def on_prediction(self, prediction: Prediction, changed: bool) -> None:
        """Queue the state (on a change or when due) and the change event."""
        self.mqtt.publish_prediction(prediction, changed)

    def health(self) -> dict[str, Any]:
        """Connection state and message counts."""
        return self.mqtt.health()

    def register_metrics(self, metrics: DaemonMetrics) -> None:
        """Messages dropped while the broker was unreachable."""
        mqtt = self.mqtt
        metrics.observe_counter(
            "genred_mqtt_messages_dropped",
            "MQTT messages dropped (oldest first) while the broker was unreachable.",
            lambda: mqtt.messages_dropped)


def history_output(context: OutputContext) -> Output | None:
    """History when ``history.enabled``; it also serves GET /history."""
    if not context.config.history.enabled:
        return None
    output = HistoryOutput(History(context.config.history))
    context.history_query = output.query
    return output


def mqtt_output(context: OutputContext) -> Output | None:
    """MQTT when ``mqtt.url`` is set."""
    if not context.config.mqtt.url:
        return None
    return MqttOutput(MqttPublisher(context.config.mqtt, sources=list(context.sources),
                                    model_name=context.model_name))


def websocket_output(context: OutputContext) -> Output:
    """The WebSocket/HTTP server (always on: it serves /healthz and /metrics)."""
    return WebSocketOutput(Publisher(
        context.config.server, model_name=context.model_name, labels=context.labels,
        metrics=context.metrics, health=context.health, history=context.history_query,
        spectrogram=context.spectrogram))
