"""MQTT output: each source's state and label changes as JSON, with Home Assistant discovery.

Topics (``<p>`` = topic_prefix, ``<s>`` = the source name with anything but letters,
digits, ``_`` and ``-`` replaced by ``_``; with MQTT on, two names that map to one ``<s>``
are refused at config load):

- ``<p>/availability``: ``online`` (retained) while connected, ``offline`` on close and as
  the last will when the daemon dies;
- ``<p>/<s>/availability``: ``online`` (retained) while the source is live (or warming up,
  silent, no music), ``offline`` while it connects, reconnects, ended or failed: Home
  Assistant shows the sensor "unavailable" then instead of the last genre;
- ``<p>/<s>/state``: ``{"source", "state", "genre", "confidence", "probabilities",
  "wall_time", "model"}`` on every label change and at most every ``state_interval_seconds``
  otherwise; while the source is silent or hears no music, ``genre`` is ``silent`` /
  ``no music`` (``state`` says which) and the next prediction is published at once;
- ``<p>/<s>/change``: ``{"source", "genre", "previous", "confidence", "wall_time"}`` on a
  label change (not retained);
- ``<discovery_prefix>/sensor/genred_<s>/config``: Home Assistant discovery (retained).

The pipeline only appends to a bounded drop-oldest queue; one task drains it into the
broker (QoS 1: a message counts as published once the broker has it), reconnecting with
backoff; on every connect it re-announces discovery, availability
and the latest states, so a restarted broker without persistence catches up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.metadata
import json
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from daemon.messages import Prediction, SourceState
from daemon.mqtt_config import (
    MqttConfig,
    connect_options,
    redact_url,
    source_slug,
)
from daemon.redact import redact_optional

_LOGGER = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0
SHOWN_STATES = {SourceState.SILENT: "silent", SourceState.NO_MUSIC: "no music"}
"""Source states shown in place of a genre."""
UNAVAILABLE_STATES = frozenset({SourceState.CONNECTING, SourceState.RECONNECTING,
                                SourceState.ENDED, SourceState.ERROR})
"""Source states in which the source's sensor is unavailable."""


def _genred_version() -> str:
    """The installed genred package's version ('' when not installed)."""
    try:
        return importlib.metadata.version("genred")
    except importlib.metadata.PackageNotFoundError:
        return ""


class MqttPublisher:
    """Queues state messages from the pipeline; :meth:`run` delivers them to the broker."""

    def __init__(self, config: MqttConfig, *, sources: Sequence[str], model_name: str,
                 sw_version: str | None = None) -> None:
        self.config = config
        self._model_name, self._sw_version = model_name, sw_version or _genred_version()
        self._prefix = config.topic_prefix
        self.availability_topic = f"{self._prefix}/availability"
        self._queue: collections.deque[tuple[str, str, bool]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._sources: dict[str, str] = {}
        """source name -> its latest state payload ('' before the first prediction)."""
        self._genres: dict[str, str] = {}
        self._last_state_monotonic: dict[str, float] = {}
        self._available: dict[str, str] = {}
        """source name -> its availability payload (online/offline)."""
        self._shown: dict[str, str] = {}
        """source name -> the state shown instead of a genre (silent / no music), if any."""
        self.connected = False
        self.error: str | None = None
        self.connects = 0
        self.messages_published = 0
        self.messages_dropped = 0
        for name in sources:
            self._sources[name] = ""

    def state_topic(self, source: str) -> str:
        """``<prefix>/<source>/state``."""
        return f"{self._prefix}/{source_slug(source)}/state"

    def source_availability_topic(self, source: str) -> str:
        """``<prefix>/<source>/availability``."""
        return f"{self._prefix}/{source_slug(source)}/availability"

    def publish_source_state(self, source: str, state: str) -> None:
        """Availability and, while silent / no music, a state shown instead of the genre."""
        state = SourceState(state)
        self._known(source)
        available = "offline" if state in UNAVAILABLE_STATES else "online"
        if self._available.get(source) != available:
            self._available[source] = available
            self._enqueue(self.source_availability_topic(source), available, True)
        shown = SHOWN_STATES.get(state)
        if shown is None or self._shown.get(source) == shown:
            return
        payload = json.dumps({"source": source, "state": str(state), "genre": shown,
                              "confidence": None, "probabilities": {},
                              "wall_time": time.time(), "model": self._model_name})
        self._sources[source] = payload
        self._shown[source] = shown
        self._last_state_monotonic.pop(source, None)  # the next prediction is shown at once
        self._enqueue(self.state_topic(source), payload, self.config.retain)

    def _known(self, source: str) -> None:
        """Announce a source first seen after the start."""
        if source not in self._sources:
            self._sources[source] = ""
            self._enqueue(self.discovery_topic(source), self.discovery_payload(source), True)

    def discovery_topic(self, source: str) -> str:
        """``<discovery_prefix>/sensor/genred_<source>/config``."""
        return f"{self.config.discovery_prefix}/sensor/genred_{source_slug(source)}/config"

    def publish_prediction(self, prediction: Prediction, changed: bool) -> None:
        """Queue the state (on a change or when due) and the change event; never blocks."""
        name = prediction.source
        self._known(name)
        payload = json.dumps({
            "source": name, "state": str(SourceState.LIVE), "genre": prediction.genre,
            "confidence": prediction.confidence,
            "probabilities": prediction.probabilities, "wall_time": prediction.wall_time,
            "model": prediction.model})
        self._sources[name] = payload
        self._shown.pop(name, None)
        now = time.monotonic()
        last = self._last_state_monotonic.get(name)
        if changed or last is None or now - last >= self.config.state_interval_seconds:
            self._last_state_monotonic[name] = now
            self._enqueue(self.state_topic(name), payload, self.config.retain)
        if changed:
            previous = self._genres.get(name)
            self._enqueue(f"{self._prefix}/{source_slug(name)}/change", json.dumps({
                "source": name, "genre": prediction.genre, "previous": previous,
                "confidence": prediction.confidence, "wall_time": prediction.wall_time}), False)
        self._genres[name] = prediction.genre

    def discovery_payload(self, source: str) -> str:
        """Home Assistant MQTT discovery config of the source's genre sensor."""
        slug = source_slug(source)
        return json.dumps({
            "name": "Genre", "unique_id": f"genred_{slug}", "icon": "mdi:music",
            "state_topic": self.state_topic(source),
            "value_template": "{{ value_json.genre }}",
            "json_attributes_topic": self.state_topic(source),
            "availability": [{"topic": self.availability_topic},
                             {"topic": self.source_availability_topic(source)}],
            "availability_mode": "all",
            "payload_available": "online", "payload_not_available": "offline",
            "device": {"identifiers": [f"genred_{slug}"], "name": f"genred {source}",
                       "manufacturer": "genred", "model": self._model_name,
                       "sw_version": self._sw_version},
            "origin": {"name": "genred", "sw_version": self._sw_version},
        })

    def health(self) -> dict[str, Any]:
        """The /healthz section."""
        return {"state": "connected" if self.connected else "disconnected",
                "url": redact_url(self.config.url or ""), "error": redact_optional(self.error),
                "connects": self.connects, "messages_published": self.messages_published,
                "messages_dropped": self.messages_dropped, "messages_queued": len(self._queue)}

    def stop(self) -> None:
        """Ask :meth:`run` to flush, publish ``offline`` and return."""
        self._stopping.set()
        self._wakeup.set()

    def _enqueue(self, topic: str, payload: str, retain: bool) -> None:
        if len(self._queue) >= self.config.queue_size:
            self._queue.popleft()
            self.messages_dropped += 1
        self._queue.append((topic, payload, retain))
        self._wakeup.set()

    async def run(self) -> None:
        """Connect, deliver, reconnect with backoff; returns after :meth:`stop`."""
        import aiomqtt

        rng, attempt = random.Random(), 0
        url = redact_url(self.config.url or "")
        while not self._stopping.is_set():
            will = aiomqtt.Will(self.availability_topic, "offline", qos=1, retain=True)
            try:
                async with aiomqtt.Client(**connect_options(self.config), will=will,
                                          timeout=PUBLISH_TIMEOUT_SECONDS) as client:
                    self.connected, self.error, attempt = True, None, 0
                    self.connects += 1
                    _LOGGER.info("mqtt: connected to %s", url)
                    try:
                        await self._session(client)
                    finally:
                        self.connected = False
                    return
            except Exception as error:  # MqttError, TLS setup...: never into the pipeline
                if self.error is None:
                    _LOGGER.warning("mqtt %s: %s; reconnecting with backoff", url, error,
                                    exc_info=not isinstance(error, aiomqtt.MqttError))
                self.connected, self.error = False, f"{type(error).__name__}: {error}"
            delay_seconds = self.config.backoff.delay_seconds(attempt, rng)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay_seconds)
        self.connected = False

    async def _session(self, client: Any) -> None:
        """One connection: announce, then drain the queue while watching for a disconnect."""
        await client.subscribe(self.availability_topic)
        for name, payload in self._sources.items():
            self._queue.appendleft((self.discovery_topic(name), self.discovery_payload(name),
                                    True))
            if payload:
                self._enqueue(self.state_topic(name), payload, self.config.retain)
            if name in self._available:
                self._enqueue(self.source_availability_topic(name), self._available[name], True)
        self._queue.appendleft((self.availability_topic, "online", True))
        drain = asyncio.create_task(self._drain(client))
        watch = asyncio.create_task(self._watch(client))
        try:
            done, _ = await asyncio.wait([drain, watch], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (drain, watch):
                task.cancel()
            await asyncio.wait([drain, watch])
        for task in done:
            task.result()

    async def _drain(self, client: Any) -> None:
        """Publish queued messages in order; after stop(), publish ``offline`` and return."""
        while True:
            while self._queue:
                message = self._queue.popleft()
                try:
                    await client.publish(message[0], message[1], qos=1, retain=message[2])
                except BaseException:
                    if len(self._queue) < self.config.queue_size:
                        self._queue.appendleft(message)
                    raise
                self.messages_published += 1
            if self._stopping.is_set():
                await client.publish(self.availability_topic, "offline", qos=1, retain=True)
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _watch(self, client: Any) -> None:
        """Raises MqttError when the connection drops (even while nothing is published)."""
        async for _message in client.messages:
            pass
