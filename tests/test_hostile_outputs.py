"""Issue 21 against a running daemon: /history paging under load, request bodies, query and
protocol errors, MQTT name collisions, one-line config errors, a full history disk."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websockets

from daemon.harness import free_port
from daemon.history import History, HistoryConfig
from daemon.history_query import COLUMNS, PAGE_ROWS, SCHEMA
from daemon.messages import Prediction
from tests.conftest import REPO_ROOT
from tests.mqtt_helpers import Broker
from tests.real_helpers import daemon_process, write_config

pytestmark = pytest.mark.timeout(300)
LABELS = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
          "reggae", "rock")
N_ROWS = 120_000
N_CLIENTS = 8
MEMORY_BOUND_MB = 300.0


def seed_history(path: Path, n_rows: int) -> None:
    """``n_rows`` rows shaped like the daemon's (10 labels), 2 s apart, two sources."""
    start = time.time() - 2.0 * n_rows
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA)
        connection.executemany(
            f"INSERT INTO predictions ({', '.join(COLUMNS[1:])}) VALUES "
            f"({', '.join('?' * (len(COLUMNS) - 1))})",
            ((f"radio{i % 2}", start + 2.0 * i, 2000 * i, 2000 * i + 29_999, LABELS[i % 10],
              0.7123, int(i % 17 == 0),
              json.dumps({label: round(0.03 + 0.001 * (i % 7), 4) for label in LABELS}),
              "genred-default") for i in range(n_rows)))


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def fetch_all_pages(port: int, path: str) -> tuple[list[dict], list[int]]:
    """Every row of a /history query, following ``Link: <...>; rel="next"``; page sizes."""
    rows: list[dict] = []
    sizes: list[int] = []
    while path:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", None, 30) as response:
            assert response.status == 200
            page = json.loads(response.read())
            link = response.headers.get("Link") or ""
        rows += page
        sizes.append(len(page))
        path = link[1:link.index(">")] if 'rel="next"' in link else ""
    return rows, sizes


async def test_history_pages_keep_memory_bounded_under_eight_huge_requests(tmp_path):
    """F1: 8 concurrent limit=100000 on 120k rows: every answer a capped page, the rest by
    ``next`` links, every row exactly once, daemon RSS growth under 300 MB."""
    database, port = tmp_path / "history.sqlite3", free_port()
    seed_history(database, N_ROWS)
    with sqlite3.connect(database) as connection:
        newest = [row[0] for row in connection.execute(
            "SELECT id FROM predictions ORDER BY wall_time DESC, id DESC LIMIT 100000")][::-1]
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [],
                          history={"path": str(database)})
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        before_mb, peak_mb, done = rss_mb(daemon.pid), 0.0, threading.Event()

        def sample() -> None:
            nonlocal peak_mb
            while not done.is_set():
                peak_mb = max(peak_mb, rss_mb(daemon.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(N_CLIENTS) as pool:
                results = list(pool.map(lambda _: fetch_all_pages(port, "/history?limit=100000"),
                                        range(N_CLIENTS)))
        finally:
            done.set()
            sampler.join()
    logging.getLogger(__name__).warning("F1: RSS before %.1f MB, peak %.1f MB (+%.1f MB)",
                                        before_mb, peak_mb, peak_mb - before_mb)
    for rows, sizes in results:
        assert max(sizes) == PAGE_ROWS and len(sizes) == -(-100_000 // PAGE_ROWS)
        assert [row["id"] for row in rows] == newest
    assert peak_mb - before_mb < MEMORY_BOUND_MB, (before_mb, peak_mb)


def http_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read the whole answer (the server closes after one response)."""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_requests_with_a_body_get_an_http_answer(tmp_path):
    """F12: POST/PUT with a body: 405 with Allow (was: connection closed, no response)."""
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        for method in ("POST", "PUT"):
            answer = http_exchange(port, (
                f"{method} /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: "
                "application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1").encode())
            assert answer.startswith(b"HTTP/1.1 405 "), answer[:200]
            assert b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in answer
        chunked = http_exchange(port, b"POST /history HTTP/1.1\r\nHost: x\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n\r\n")
        assert chunked.startswith(b"HTTP/1.1 405 "), chunked[:200]
        with_body = http_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                        b"Content-Length: 2\r\n\r\nhi")
        assert with_body.startswith(b"HTTP/1.1 400 "), with_body[:200]
        assert json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", None, 10)
                          .read())["status"] == "ok"  # the server still answers


async def test_bad_changes_parameter_and_a_client_hello(tmp_path):
    """``changes=maybe`` is a 400 (was silently false); a client's hello is unknown_type."""
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/history?changes=maybe", None, 10)
        assert caught.value.code == 400
        assert "changes" in json.loads(caught.value.read())["error"]
        for value in ("0", "false", "1", "yes"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/history?changes={value}",
                                        None, 10) as response:
                assert response.status == 200
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send('{"type": "hello"}')
            error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "unknown_type", error


def genred_run(config: Path, timeout_seconds: float = 60.0) -> subprocess.CompletedProcess:
    """``genred run --config CONFIG``; a daemon that starts anyway is killed at the timeout."""
    try:
        return subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(config)],
                              capture_output=True, text=True, cwd=REPO_ROOT,
                              timeout=timeout_seconds, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"the daemon started: {expired.stderr!r}") from None


def test_sources_that_share_an_mqtt_topic_are_refused_at_load(tmp_path):
    """F3: ``a/b`` and ``a_b`` would share genred/a_b/state and unique_id genred_a_b."""
    broker = Broker(tmp_path).start()
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=440:d=60",
                    str(tone)], check=True, timeout=60)
    try:
        config = write_config(
            tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default", free_port(),
            [{"name": name, "kind": "url", "url": str(tone)} for name in ("a/b", "a_b")],
            mqtt={"url": broker.url})
        result = genred_run(config, 30)
    finally:
        broker.stop()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "'a/b' and 'a_b'" in lines[0] and "genred/a_b/state" in lines[0], lines[0]


def test_duplicate_key_error_is_one_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  port: 8765\n  host: 127.0.0.1\n  port: 9999\n")
    result = genred_run(config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"genred: config error: --config {config}: invalid YAML (found duplicate key 'port' at "
        "line 4, column 3; first at line 2)"]


# --- F11: history on a full disk (a real tmpfs) -------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 300 KB tmpfs (skip where mounting is not allowed)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, timeout=30)


def fill(folder: Path) -> Path:
    """A file taking every free byte of ``folder``'s filesystem."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(descriptor)
    return filler


def row(index: int) -> Prediction:
    return Prediction(source="radio", window_start_ms=index, window_end_ms=index + 30000,
                      wall_time=time.time(), genre="jazz", confidence=0.7,
                      probabilities={label: 0.1 for label in LABELS},
                      raw_probabilities={label: 0.1 for label in LABELS}, model="fake")


def test_full_disk_logs_one_error_then_one_line_when_writing_resumes(small_tmpfs, caplog):
    """F11: was a "history: PATH (keeping 30 days)" line per batch while the disk is full."""
    caplog.set_level(logging.INFO, logger="daemon.history")
    history = History(HistoryConfig(path=str(small_tmpfs / "h.sqlite3"),
                                    commit_interval_seconds=0.01))
    history.start()
    try:
        history.record(row(0), True)
        deadline = time.monotonic() + 10
        while history.rows_written < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        filler = fill(small_tmpfs)
        for index in range(1, 41):  # 40 batches on a full disk
            history.record(row(index), False)
            time.sleep(0.03)
        deadline = time.monotonic() + 10
        while history.rows_failed + history.rows_written < 41:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert history.rows_failed >= 20 and history.health()["state"] == "error"
        filler.unlink()
        history.record(row(41), False)
        deadline = time.monotonic() + 10
        while history.health()["state"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        history.close()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["INFO", "ERROR", "INFO"], lines
    assert "full" in lines[1][1] and lines[2][1].endswith("writing again"), lines


def test_sigterm_with_a_stalled_mqtt_broker_exits_within_5_s(tmp_path: Path) -> None:
    """A broker that accepts and never answers: the daemon still stops within 5 s, exit 0
    (sources close and outputs stop at once, MQTT bounded by its own stop)."""
    from daemon.harness import DaemonProcess
    from tests.daemon_helpers import write_tone_wav

    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(stalled.accept()[0]), daemon=True)
    accepting.start()
    wav = write_tone_wav(tmp_path / "tone.wav", 440, 60.0)
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "tone", "kind": "url", "url": str(wav)}],
                          history={"enabled": False},
                          mqtt={"url": f"mqtt://127.0.0.1:{stalled.getsockname()[1]}"})
    daemon = DaemonProcess(config, tmp_path / "daemon.log", fake_model=True).start()
    try:
        daemon.wait_ready_blocking(port)
        accepting.join(20)  # the MQTT client is connected to the silent broker
        assert held, daemon.log()
        started = time.monotonic()
        status = daemon.stop(timeout_seconds=15)
        seconds = time.monotonic() - started
    finally:
        daemon.stop()
        stalled.close()
        for connection in held:
            connection.close()
    assert status == 0, daemon.log()
    assert seconds < 5.0, (seconds, daemon.log())
