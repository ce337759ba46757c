"""Fan-out: 1000 WebSocket subscribers on loopback; publish-to-receipt delay; RSS, stalled clients.

The daemon runs in a subprocess (``--serve``) with the fake numpy model of the tests (so no
inference competes) and one ``tcp`` PCM source fed from here (25-s pre-roll, then real
time, hop ~0.5 s). Phase 1: ``--clients`` readers; delay = receipt ``time.time()`` - the
prediction's ``wall_time`` (stamped by the daemon just before publishing). Phase 2: 100 more
clients open a raw socket, send the WebSocket upgrade and never read; the daemon's RSS is
sampled every second while the readers go on.

Run: .venv/bin/python -m bench.fanout [--clients 1000] [--stalled 100] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import psutil

from bench.common import CACHE_DIR, PYTHON, REPO_ROOT, setup_logging, summarize, write_result
from daemon.harness import free_port, http_get, metric

_LOGGER = logging.getLogger("bench.fanout")
HOP_SECONDS = 0.5


def raise_nofile(wanted: int = 8192) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted``; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def serve(port: int, pcm_port: int) -> None:
    """The daemon with the fake model (subprocess body)."""
    sys.path.insert(0, str(REPO_ROOT))
    from daemon.config import config_from_dict
    from daemon.harness import fake_model
    from daemon.runner import run_daemon

    raise_nofile()
    config = config_from_dict({
        "server": {"port": port, "client_queue_size": 64}, "log_level": "warning",
        "window": {"hop_seconds": HOP_SECONDS},
        "sources": [{"name": "pcm", "kind": "tcp", "port": pcm_port, "sample_rate_hz": 44100,
                     "pcm_format": "f32le"}]})

    def install(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    asyncio.run(run_daemon(config, install, model=fake_model()))


class Subscriber(asyncio.Protocol):
    """A minimal WebSocket client: notes (receipt time, payload) of each text frame, answers pings.

    Lighter than a full client library, so the receipt time of the last of 1000 subscribers
    measures the daemon's fan-out rather than this process's frame handling.
    """

    def __init__(self, key: str, ready: asyncio.Future) -> None:
        self.key, self.ready = key, ready
        self.log: list[tuple[float, bytes]] = []
        self._buffer = b""
        self._open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(upgrade_request(self.key))

    def data_received(self, data: bytes) -> None:  # noqa: D102
        now = time.time()
        self._buffer += data
        if not self._open:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self._open, self._buffer = True, rest
            if not self.ready.done():
                self.ready.set_result(head.startswith(b"HTTP/1.1 101"))
        while len(self._buffer) >= 2:
            opcode, length, start = self._buffer[0] & 0x0F, self._buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(self._buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(self._buffer[2:10], "big"), 10
            if len(self._buffer) < start + length:
                return
            payload = self._buffer[start:start + length]
            self._buffer = self._buffer[start + length:]
            if opcode == 1:
                self.log.append((now, payload))
            elif opcode == 9 and self.transport is not None:  # ping -> masked pong
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)


def upgrade_request(key: str) -> bytes:
    """The HTTP request opening a WebSocket on ``/``."""
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


async def subscribe(port: int, gate: asyncio.Semaphore) -> Subscriber:
    """Open one subscriber (the handshake done)."""
    loop = asyncio.get_running_loop()
    async with gate:
        ready = loop.create_future()
        key = base64.b64encode(os.urandom(16)).decode()
        _, protocol = await loop.create_connection(lambda: Subscriber(key, ready),
                                                   "127.0.0.1", port)
        if not await asyncio.wait_for(ready, 60):
            raise RuntimeError("WebSocket upgrade refused")
    return protocol


def stalled_socket(port: int) -> socket.socket:
    """A client that completes nothing but the upgrade request and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(upgrade_request(key))
    return sock


def delays(logs: list[list[tuple[float, bytes]]], since: float,
           until: float) -> tuple[list[float], list[float]]:
    """(receipt - wall_time of every prediction published in [since, until), the largest of
    each broadcast: when its last subscriber had it)."""
    out: list[float] = []
    last: dict[float, float] = {}
    for log in logs:
        for received, text in log:
            event = json.loads(text)
            if event["type"] != "prediction" or not since <= event["wall_time"] < until:
                continue
            published = event["wall_time"]
            out.append(received - published)
            last[published] = max(last.get(published, 0.0), received - published)
    return out, list(last.values())


async def measure(port: int, pcm_port: int, n_clients: int, n_stalled: int, seconds: float,
                  daemon: psutil.Process) -> dict[str, Any]:
    """Both phases; figures as a dict."""
    from bench.frontend import music_like
    from bench.latency import PREROLL_SECONDS, RATE, Feeder

    gate = asyncio.Semaphore(50)
    started = time.monotonic()
    subscribers = await asyncio.gather(*(subscribe(port, gate) for _ in range(n_clients)))
    connect_seconds = time.monotonic() - started
    rss_connected = daemon.memory_info().rss / 1e6
    total = PREROLL_SECONDS + 10 + 2 * seconds + 60
    feeder = Feeder(music_like(int(total * RATE)))
    feed = asyncio.create_task(feeder.run(pcm_port))
    await asyncio.sleep(30.0 - PREROLL_SECONDS + 3.0)  # until the first windows
    phase1 = time.time()
    await asyncio.sleep(seconds)
    phase2 = time.time()
    stalled = [stalled_socket(port) for _ in range(n_stalled)]
    rss = []
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        rss.append(daemon.memory_info().rss / 1e6)
    end = time.time()
    text = http_get(port, "/metrics")
    for sock in stalled:
        sock.close()
    feed.cancel()
    for subscriber in subscribers:
        if subscriber.transport is not None:
            subscriber.transport.close()
    logs = [s.log for s in subscribers]
    readers, stalled_readers = delays(logs, phase1, phase2), delays(logs, phase2, end)
    result = {
        "clients": n_clients, "stalled_clients": n_stalled, "seconds_per_phase": seconds,
        "connect_seconds": round(connect_seconds, 2),
        "delay_seconds": summarize(readers[0]),
        "broadcast_done_seconds": summarize(readers[1]),
        "delay_seconds_with_stalled": summarize(stalled_readers[0]),
        "rss_mb_before_clients": None, "rss_mb_clients_connected": round(rss_connected, 1),
        "rss_mb_with_stalled": summarize(rss, 1),
        "rss_mb_growth_with_stalled": round(rss[-1] - rss[min(5, len(rss) - 1)], 1),
        "client_messages_dropped": metric(text, "genred_client_messages_dropped_total"),
        "clients_at_end": metric(text, "genred_clients"),
    }
    result["goal_met"] = result["delay_seconds"].get("p99", 1.0) <= 0.050
    return result


def run(n_clients: int, n_stalled: int, seconds: float) -> dict[str, Any]:
    """Start the fake-model daemon and measure."""
    limit = raise_nofile(max(8192, 2 * (n_clients + n_stalled) + 256))
    port, pcm_port = free_port(), free_port()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "fanout.log").open("w") as log:
        server = subprocess.Popen(
            [PYTHON, "-m", "bench.fanout", "--serve", str(port), str(pcm_port)], cwd=REPO_ROOT,
            stdout=log, stderr=subprocess.STDOUT)
        try:
            daemon = psutil.Process(server.pid)
            for _ in range(120):
                try:
                    http_get(port, "/healthz", timeout_seconds=1)
                    break
                except OSError:
                    time.sleep(0.5)
            rss_before = daemon.memory_info().rss / 1e6
            result = asyncio.run(measure(port, pcm_port, n_clients, n_stalled, seconds, daemon))
            result["rss_mb_before_clients"] = round(rss_before, 1)
        finally:
            server.terminate()
            server.wait(30)
    result["nofile_limit"] = limit
    _LOGGER.info("delay p99 %.1f ms (median %.1f ms); RSS growth with stalled %.1f MB",
                 1000 * result["delay_seconds"]["p99"], 1000 * result["delay_seconds"]["median"],
                 result["rss_mb_growth_with_stalled"])
    return result


def main() -> None:
    """Measure and write bench/results/fanout.json (or serve, in the subprocess)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--stalled", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each phase")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PORT", "PCM_PORT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--name", default="fanout")
    args = parser.parse_args()
    setup_logging()
    if args.serve:
        logging.getLogger().setLevel(logging.WARNING)
        serve(*args.serve)
        return
    write_result(args.name, run(args.clients, args.stalled, args.seconds))


if __name__ == "__main__":
    main()
