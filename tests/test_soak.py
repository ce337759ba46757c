"""Load and soak: 1000 WebSocket clients on loopback (100 never read) while an hour of audio is
replayed faster than real time through one source; the daemon's resident memory must stay
flat after warm-up, and its log free of tracebacks.

The daemon runs as a subprocess with the fake model (numpy; no TensorFlow), so the
figures measure the daemon's own buffers, queues and sockets. The audio goes through a
`tcp` PCM source so that the replay starts only once every client is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import websockets

from daemon.harness import free_port, http_get, metric
from tests.daemon_helpers import write_tone_wav
from tests.real_helpers import daemon_process, render_pcm, rss_bytes, write_config

MB = 1024 * 1024
CONNECT_BATCH = 50
CLIP_SECONDS = 60.0


@dataclass
class SoakRun:
    clients: int
    stalled: int
    audio_seconds: float
    warmup_audio_seconds: float
    rss_growth_bound_mb: float
    hop_seconds: float
    speed: float
    """Replay pace in multiples of real time (so that inference keeps up: no dropped windows)."""


@dataclass
class Sample:
    at: float
    audio_seconds: float
    rss: int
    clients: int


@dataclass
class Reader:
    """A client that reads and counts everything."""

    ws: websockets.ClientConnection
    predictions: int = 0
    task: asyncio.Task | None = None

    async def run(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.ws:
                if '"type":"prediction"' in text.replace(" ", ""):
                    self.predictions += 1


@dataclass
class Clients:
    readers: list[Reader] = field(default_factory=list)
    stalled: list[socket.socket] = field(default_factory=list)

    async def close(self) -> None:
        for sock in self.stalled:
            sock.close()
        await asyncio.gather(*(asyncio.wait_for(r.ws.close(), 10) for r in self.readers),
                             return_exceptions=True)
        await asyncio.gather(*(asyncio.wait_for(r.task, 10) for r in self.readers if r.task),
                             return_exceptions=True)


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-files hard limit {hard} is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))  # the daemon inherits it


def stalled_client(port: int) -> socket.socket:
    """A WebSocket upgrade whose sender never reads a byte (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


async def connect_clients(port: int, run: SoakRun) -> Clients:
    clients = Clients()
    for _ in range(run.stalled):
        clients.stalled.append(await asyncio.to_thread(stalled_client, port))

    async def reader() -> Reader:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=30,
                                      close_timeout=2)
        client = Reader(ws)
        client.task = asyncio.create_task(client.run())
        return client

    remaining = run.clients - run.stalled
    while remaining > 0:
        batch = min(CONNECT_BATCH, remaining)
        clients.readers += await asyncio.wait_for(
            asyncio.gather(*(reader() for _ in range(batch))), 60)
        remaining -= batch
    return clients


async def wait_metric(port: int, name: str, value: float, timeout_seconds: float,
                      below: bool = False) -> None:
    """Wait until metric ``name`` is >= ``value`` (<= with ``below``)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        current = metric(await asyncio.to_thread(http_get, port, "/metrics"), name)
        if (current <= value) if below else (current >= value):
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"{name} did not reach {value} in {timeout_seconds} s")


async def wait_audio(port: int, audio_seconds: float, timeout_seconds: float) -> None:
    """Wait until the source has consumed ``audio_seconds`` of audio (from /healthz)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
        if health["sources"][0]["audio_seconds"] >= audio_seconds:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"the daemon did not consume {audio_seconds} s of audio in time")


async def replay(pcm_port: int, clip: bytes, audio_seconds: float, speed: float) -> None:
    """Send ``clip`` (s16le mono 44.1 kHz) in a loop, ``speed`` x real time, until
    ``audio_seconds`` went out."""
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pcm_port), 10)
    second = 44100 * 2
    total_bytes, sent, started = int(audio_seconds) * second, 0, time.monotonic()
    try:
        while sent < total_bytes:
            offset = sent % len(clip)
            writer.write(clip[offset:offset + second])
            await asyncio.wait_for(writer.drain(), 120)
            sent += second
            ahead = sent / second / speed - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        writer.close()


async def sample_memory(pid: int, port: int, samples: list[Sample], stop: asyncio.Event) -> None:
    """Every 0.25 s: audio consumed, the daemon's RSS and its connected clients."""
    while not stop.is_set():
        health = await asyncio.to_thread(http_get, port, "/healthz")
        metrics = await asyncio.to_thread(http_get, port, "/metrics")
        audio = float(json.loads(health)["sources"][0]["audio_seconds"])
        samples.append(Sample(time.monotonic(), audio, rss_bytes(pid),
                              int(metric(metrics, "genred_clients"))))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


def clip_pcm(tmp_path: Path) -> bytes:
    """60 s of varied audio: a real clip when ../shared/data is present, else tones."""
    from tests.conftest import SHARED_DATA

    real = SHARED_DATA / "cc-music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    if real.is_file():
        return render_pcm(real, CLIP_SECONDS)
    parts = [render_pcm(write_tone_wav(tmp_path / f"t{f}.wav", f, CLIP_SECONDS / 3), 20.0)
             for f in (220, 1500, 6000)]
    return b"".join(parts)


RUN = SoakRun(clients=1000, stalled=100, audio_seconds=3600.0, warmup_audio_seconds=600.0,
              rss_growth_bound_mb=30.0, hop_seconds=2.0, speed=100.0)
"""About 45 s on 2 busy cores: not marked slow."""


@pytest.mark.timeout(600)
async def test_many_clients_and_long_audio_keep_memory_flat(tmp_path, ffmpeg):
    run = RUN
    raise_open_files_limit(2 * run.clients + 256)
    clip = clip_pcm(tmp_path)
    port, pcm_port = free_port(), free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port,
                          [{"name": "replay", "kind": "tcp", "port": pcm_port,
                            "sample_rate_hz": 44100}],
                          window={"hop_seconds": run.hop_seconds})
    samples: list[Sample] = []
    started = time.monotonic()
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        idle_rss = rss_bytes(daemon.pid)
        clients = await connect_clients(port, run)
        connected = time.monotonic()
        try:
            await wait_metric(port, "genred_clients", run.clients, 60)
            connected_rss = rss_bytes(daemon.pid)
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_memory(daemon.pid, port, samples, stop))
            replay_started = time.monotonic()
            await asyncio.wait_for(replay(pcm_port, clip, run.audio_seconds, run.speed), 400)
            await wait_audio(port, run.audio_seconds - 0.1, 120)
            replay_seconds = time.monotonic() - replay_started
            # websockets' keepalive (ping every 20 s, 20 s for the pong) drops the stalled ones
            await wait_metric(port, "genred_clients", run.clients - run.stalled, 60, below=True)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(sampler, 15)
            metrics = await asyncio.to_thread(http_get, port, "/metrics")
        finally:
            await clients.close()
    counts = sorted(r.predictions for r in clients.readers)
    stalled_dropped = next(s.at for s in samples if s.clients <= run.clients - run.stalled)
    warm = [s.rss for s in samples if s.audio_seconds >= run.warmup_audio_seconds]
    baseline, peak = warm[0], max(warm)
    print(f"\n{run.clients} clients ({run.stalled} never read), {run.audio_seconds:.0f} s of "
          f"audio replayed in {replay_seconds:.1f} s ({run.audio_seconds / replay_seconds:.0f}x "
          f"real time), whole test {time.monotonic() - started:.0f} s\n"
          f"RSS: idle {idle_rss / MB:.1f} MB, clients connected {connected_rss / MB:.1f} MB, "
          f"after {run.warmup_audio_seconds:.0f} s of audio {baseline / MB:.1f} MB, peak "
          f"{peak / MB:.1f} MB, last {warm[-1] / MB:.1f} MB (growth "
          f"{(peak - baseline) / MB:.1f} MB)\npredictions per reading client: min {counts[0]}, "
          f"median {counts[len(counts) // 2]}, max {counts[-1]}; dropped client messages "
          f"{metric(metrics, 'genred_client_messages_dropped_total'):.0f}; stalled clients "
          f"disconnected {stalled_dropped - connected:.0f} s after connecting")
    assert len(warm) >= 3, "too few memory samples after warm-up"
    assert stalled_dropped - connected < 60
    assert peak - baseline < run.rss_growth_bound_mb * MB
    assert counts[0] > 0, "a reading client got no prediction"
    assert np.median(counts) >= 0.5 * metric(metrics, "genred_windows_classified_total")
    assert "Traceback" not in daemon.log()
