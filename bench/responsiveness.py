"""Is the daemon still responsive under load? /healthz response time and the delay of
predictions to a WebSocket subscriber, sampled in a background thread during a run.

Used by ``bench.streams`` (issue 12: "/healthz and fan-out latency stay flat while 100 sources
run"): compare a 100-source run with a 1-source run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from websockets.sync.client import connect

from bench.common import summarize
from daemon.harness import http_get

_LOGGER = logging.getLogger("bench.responsiveness")
HEALTHZ_PERIOD_SECONDS = 0.5


class Probe:
    """Times GET /healthz every 0.5 s and each prediction's receipt - its ``wall_time``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.healthz_ms: list[float] = []
        self.delivery_ms: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, daemon=True),
                         threading.Thread(target=self._subscribe, daemon=True)]

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self) -> None:
        """GET /healthz every period; its wall time."""
        while not self._stop.wait(HEALTHZ_PERIOD_SECONDS):
            started = time.perf_counter()
            http_get(self.port, "/healthz")
            self.healthz_ms.append((time.perf_counter() - started) * 1000)

    def _subscribe(self) -> None:
        """One WebSocket subscriber: publish -> receipt of every prediction published after it
        connected (the greeting replays the latest ones)."""
        with connect(f"ws://127.0.0.1:{self.port}/", max_size=None) as ws:
            connected = time.time()
            while not self._stop.is_set():
                try:
                    text = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                received = time.time()
                event = json.loads(text)
                if event.get("type") == "prediction" and event["wall_time"] >= connected:
                    self.delivery_ms.append((received - event["wall_time"]) * 1000)

    def result(self) -> dict[str, Any]:
        """Summaries of both, in ms."""
        return {"healthz_ms": summarize(self.healthz_ms, 2),
                "prediction_delivery_ms": summarize(self.delivery_ms, 2)}
