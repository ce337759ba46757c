"""Hostile conditions around a running daemon subprocess (issue 13): credentials in source
URLs, many clients, stdin that is not a pipe, an idle tcp producer, signals while loading."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import websockets

from daemon.harness import DaemonProcess, free_port, http_get
from daemon.lograte import RepeatLimiter
from daemon.redact import redact
from tests.conftest import REPO_ROOT
from tests.real_helpers import daemon_process, write_config

pytestmark = pytest.mark.timeout(180)
PASSWORD = "hunter2-secret"
QUERY_TOKEN = "qtoken-secret"


async def read_messages(url: str, predicate, timeout_seconds: float) -> list[dict]:
    """Messages of one WebSocket connection up to the first satisfying ``predicate``."""
    received: list[dict] = []

    async def scan() -> None:
        async with websockets.connect(url) as ws:
            async for text in ws:
                received.append(json.loads(text))
                if predicate(received[-1]):
                    return

    await asyncio.wait_for(scan(), timeout_seconds)
    return received


async def test_url_credentials_are_redacted_in_healthz_status_and_log(tmp_path):
    port, closed_port = free_port(), free_port()
    url = f"http://user:{PASSWORD}@127.0.0.1:{closed_port}/stream?token={QUERY_TOKEN}&b=1"
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "radio", "kind": "url", "url": url,
         "backoff": {"initial_seconds": 0.2, "max_seconds": 0.5}}])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        messages = await read_messages(
            f"ws://127.0.0.1:{port}/", lambda m: m.get("state") == "reconnecting"
            and "Connection refused" in (m.get("message") or ""), 30)
        health = await asyncio.to_thread(http_get, port, "/healthz")
    shown = {"status events": json.dumps(messages), "/healthz": health, "log": daemon.log()}
    assert "Connection refused" in shown["log"]
    for where, text in shown.items():
        assert PASSWORD not in text and QUERY_TOKEN not in text, f"{where}: {text[-2000:]}"
        assert "***@127.0.0.1" in text, f"{where}: {text[-2000:]}"


async def _connect_or_status(url: str) -> websockets.ClientConnection | int:
    """An open client, or the HTTP status the handshake was refused with."""
    try:
        return await asyncio.wait_for(websockets.connect(url, open_timeout=20), 30)
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def test_clients_beyond_the_cap_get_503_and_sources_keep_their_files(tmp_path):
    port, closed_port = free_port(), free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "radio", "kind": "url", "url": f"http://127.0.0.1:{closed_port}/",
         "backoff": {"initial_seconds": 0.2, "max_seconds": 0.3}}])
    command = ["bash", "-c", 'ulimit -n 150 && exec "$0" -m daemon.harness "$2"', sys.executable]
    daemon = DaemonProcess(config, tmp_path / "daemon.log", command=command).start()
    try:
        await daemon.wait_ready(port, 60)
        results = await asyncio.gather(*(_connect_or_status(f"ws://127.0.0.1:{port}/")
                                         for _ in range(200)))
        clients = [r for r in results if not isinstance(r, int)]
        refused = [r for r in results if isinstance(r, int)]
        cap = int(re.search(r"max_clients lowered from 1024 to (\d+)", daemon.log()).group(1))
        assert len(clients) == cap and set(refused) == {503}, (len(clients), set(refused))
        # the burst of 200 handshakes may exhaust the files for a moment (a failed ffmpeg start
        # is retried with backoff); asyncio retries accept() after 1 s when it hit the limit
        await asyncio.sleep(1.5)
        since = len(daemon.log())
        await asyncio.sleep(3.0)  # ffmpeg restarts several times meanwhile
        health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
        assert "Connection refused" in health["sources"][0]["message"], health
        await asyncio.gather(*(c.close() for c in clients))
        new_log = daemon.log()[since:]
        assert "Too many open files" not in new_log and len(new_log) < 20_000, new_log
        assert daemon.log().count("socket.accept() out of system resource") <= 5  # rate-limited
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
    assert "Traceback" not in daemon.log()


async def _wait_source(port: int, predicate, timeout_seconds: float) -> dict:
    """The first /healthz source entry satisfying ``predicate`` (polled)."""
    async def poll() -> dict:
        while True:
            health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
            if predicate(health["sources"][0]):
                return health["sources"][0]
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout_seconds)


@pytest.mark.parametrize(("redirect", "state", "message"), [
    ("", "ended", "stdin was empty (is it /dev/null?)"),  # DaemonProcess: stdin is /dev/null
    ("<&-", "error", "stdin is closed"),
])
async def test_stdin_source_without_a_pipe_ends_with_a_clear_message(tmp_path, redirect, state,
                                                                       message):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "pcm", "kind": "stdin", "sample_rate_hz": 44100}])
    script = f'exec "$0" -m daemon.harness "$2" {redirect}'
    daemon = DaemonProcess(config, tmp_path / "daemon.log",
                           command=["bash", "-c", script, sys.executable]).start()
    try:
        await daemon.wait_ready(port, 60)
        source = await _wait_source(port, lambda s: s["state"] in ("ended", "error"), 20)
        assert source["state"] == state and message in source["message"], source
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]
    assert "Traceback" not in daemon.log(), daemon.log()


def _wait_log(daemon: DaemonProcess, text: str, timeout_seconds: float) -> None:
    """Poll the daemon's log until it contains ``text``."""
    deadline = time.monotonic() + timeout_seconds
    while text not in daemon.log():
        assert daemon.process.poll() is None, daemon.log()
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT,),
                                     (signal.SIGINT, signal.SIGINT)])
def test_signal_while_the_model_loads_exits_0_at_once(tmp_path, signals):
    # the Keras runtime: its load takes seconds (the default TFLite export loads in ~0.5 s)
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          free_port(), [], inference={"runtime": "keras"})
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    try:
        _wait_log(daemon, "loading model from", 60)
        for signum in signals:
            daemon.process.send_signal(signum)
            time.sleep(0.1)
        assert daemon.process.wait(10) == 0, daemon.log()
        assert "loaded model" not in daemon.log()  # it really was still loading
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.log() and "stopped while loading" in daemon.log()


@pytest.mark.parametrize("signals", [(signal.SIGHUP,), (signal.SIGINT, signal.SIGINT),
                                     (signal.SIGTERM, signal.SIGINT, signal.SIGTERM)])
def test_signals_while_running_stop_cleanly_with_status_0(tmp_path, signals):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "pcm", "kind": "tcp", "port": free_port(), "sample_rate_hz": 44100}])
    daemon = DaemonProcess(config, tmp_path / "daemon.log", fake_model=True).start()
    try:
        daemon.wait_ready_blocking(port, 60)
        for signum in signals:
            daemon.process.send_signal(signum)
            time.sleep(0.05)
        assert daemon.process.wait(15) == 0, daemon.log()
    finally:
        daemon.stop()
    log = daemon.log()
    assert "Traceback" not in log and f"{signals[0].name}: stopping" in log and "stopped" in log


async def test_idle_tcp_producer_gives_way_to_a_real_one(tmp_path):
    port, pcm_port = free_port(), free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "pcm", "kind": "tcp", "port": pcm_port, "sample_rate_hz": 44100}],
        window={"hop_seconds": 1.0})
    tone = (0.3 * np.sin(np.arange(44100 * 40) * 0.2) * 32767).astype("<i2").tobytes()
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        _, idle = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pcm_port), 5)
        await asyncio.sleep(0.5)
        _, real = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", pcm_port), 5)
        real.write(tone)  # 40 s of audio at once: a prediction once the window is full
        messages = await read_messages(f"ws://127.0.0.1:{port}/",
                                       lambda m: m["type"] == "prediction", 30)
        assert messages[-1]["source"] == "pcm"
        real.close()
        idle.close()
    assert "sent nothing for 1 s; dropped for the one waiting" in daemon.log()


async def test_video_only_file_source_says_no_audio_stream(tmp_path):
    port, video = free_port(), tmp_path / "video.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=1",
                    str(video)], check=True, timeout=60)
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "film", "kind": "url", "url": str(video)}])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        source = await _wait_source(port, lambda s: s["state"] == "error", 20)
    assert source["message"] == "no audio decoded: no audio stream (a video-only or data file?)"


def _raw_http(port: int, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 request: (status line, headers, every byte after the headers)."""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}, body


async def test_head_and_options_carry_no_body(tmp_path):
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        for path in ("/", "/healthz", "/metrics", "/history?limit=5"):
            get_status, get_headers, get_body = _raw_http(port, "GET", path)
            status, headers, body = _raw_http(port, "HEAD", path)
            assert status == get_status == "HTTP/1.1 200 OK" and body == b"", (path, body[:80])
            assert int(headers["content-length"]) > 0 and get_body
        status, headers, body = _raw_http(port, "OPTIONS", "/")
        assert status == "HTTP/1.1 204 No Content" and body == b""
        assert headers["allow"] == "GET, HEAD, OPTIONS"
        status, headers, body = _raw_http(port, "POST", "/")
        assert status.startswith("HTTP/1.1 405") and "<html" not in body.decode()


@pytest.mark.parametrize(("text", "shown"), [
    ("http://u:p4ss@h:1/x?token=abc&b=1", "http://***@h:1/x?token=***&b=1"),
    ("rtsp://cam@10.0.0.1/s", "rtsp://***@10.0.0.1/s"),
    ("https://h/a?x=1&API_KEY=zz#f", "https://h/a?x=1&API_KEY=***#f"),
    ("mail me@example.org, x=1", "mail me@example.org, x=1"),
])
def test_redact(text, shown):
    assert redact(text) == shown


def test_a_repeating_error_is_logged_five_times_then_counted(caplog):
    logger = logging.getLogger("test.repeat")
    limiter = RepeatLimiter(burst=5, interval_seconds=0.5)
    logger.addFilter(limiter)
    try:
        with caplog.at_level(logging.INFO, logger="test.repeat"):
            for i in range(1000):
                logger.error("accept failed: %d", i)
            logger.info("info is never limited")
            time.sleep(0.6)
            logger.error("accept failed: %d", 1000)
    finally:
        logger.removeFilter(limiter)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7 and lines[-1] == "accept failed: 1000 (995 similar suppressed)", lines
