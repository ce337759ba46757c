"""Access control: a non-loopback bind needs a token; wrong/missing tokens get 401 before
any data; a disallowed Origin gets 403. Real daemon subprocess and in-process Service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.harness import fake_model, free_port
from tests.conftest import REPO_ROOT
from tests.real_helpers import build_spectral_artifact, daemon_process, write_config

pytestmark = pytest.mark.timeout(180)
TOKEN = "s3cret-token-for-tests"
ALLOWED_ORIGIN = "http://genred.example:8765"


@pytest.fixture(scope="module")
def spectral_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spectral_artifact(tmp_path_factory.mktemp("artifacts") / "spectral")


def _env_without_token() -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("GENRED_TOKEN", None)
    return env


def test_non_loopback_bind_without_token_refuses_to_start(tmp_path, spectral_artifact):
    config = write_config(tmp_path / "config.yaml", spectral_artifact, free_port("0.0.0.0"), [])
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--host", "0.0.0.0"],
        cwd=REPO_ROOT, env=_env_without_token(), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "server.token: is required" in result.stderr
    assert "Traceback" not in result.stderr


def raw_upgrade(port: int, target: str = "/", headers: tuple[str, ...] = ()) -> bytes:
    """A hand-written WebSocket upgrade: all the server sends, up to its first frame."""
    request = "\r\n".join([
        f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
        "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13", *headers, "", ""])
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.settimeout(5)
        sock.sendall(request.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if received.startswith(b"HTTP/1.1 101") and b"hello" in received:
                break
    return received


async def test_token_on_a_non_loopback_daemon(tmp_path, spectral_artifact):
    port = free_port("0.0.0.0")
    config = write_config(tmp_path / "config.yaml", spectral_artifact, port, [],
                          server={"host": "0.0.0.0"})
    with daemon_process(config, tmp_path / "daemon.log", {"GENRED_TOKEN": TOKEN}) as daemon:
        await daemon.wait_ready(port)
        reply = await asyncio.to_thread(raw_upgrade, port)
        assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
        assert b"hello" not in reply and b"\r\n\r\nunauthorized\n" in reply
        url = f"ws://127.0.0.1:{port}/?token={TOKEN}"
        async with websockets.connect(url, open_timeout=10) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"
    assert "Traceback" not in daemon.log()


@contextlib.asynccontextmanager
async def guarded_service() -> AsyncIterator[int]:
    """A Service on 0.0.0.0 with a token and one allowed origin; yields its port."""
    config = config_from_dict({"server": {"host": "0.0.0.0", "port": 0, "token": TOKEN,
                                          "allowed_origins": [ALLOWED_ORIGIN]},
                               "sources": []})
    service = build_service(config, fake_model())
    service.create_sources()
    await asyncio.wait_for(service.start_server(), 10)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service.publisher.port
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(("target", "headers", "status"), [
    ("/", (), 401),
    ("/?token=wrong", (), 401),
    ("/?token=", (), 401),
    ("/", ("Authorization: Bearer wrong",), 401),
    ("/", (f"Authorization: Basic {TOKEN}",), 401),
    (f"/?token={TOKEN}", ("Authorization: Bearer wrong",), 401),   # every credential must match
    (f"/?token={TOKEN}&token=wrong", (), 401),
    (f"/?token={TOKEN}", ("Origin: http://evil.example",), 403),
    (f"/?token={TOKEN}", (f"Origin: {ALLOWED_ORIGIN}", "Origin: http://evil.example"), 403),
    (f"/ws?token={TOKEN}", (f"Origin: {ALLOWED_ORIGIN}",), 101),
    ("/", (f"Authorization: Bearer {TOKEN}",), 101),
    ("/", (f"authorization: bearer {TOKEN}",), 101),
])
async def test_upgrade_is_refused_before_any_data(target, headers, status):
    async with guarded_service() as port:
        reply = await asyncio.to_thread(raw_upgrade, port, target, headers)
    assert reply.startswith(f"HTTP/1.1 {status}".encode()), reply[:300]
    if status != 101:
        assert b"hello" not in reply and b"protocol_version" not in reply
    else:
        assert b"hello" in reply   # the first frame after the handshake


async def test_http_endpoints_with_a_token():
    async with guarded_service() as port:
        base = f"http://127.0.0.1:{port}"

        def status(path: str, headers: dict[str, str] | None = None) -> int:
            request = urllib.request.Request(base + path, headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert await asyncio.to_thread(status, "/healthz") == 200     # never needs a token
        assert await asyncio.to_thread(status, "/metrics") == 401
        assert await asyncio.to_thread(status, "/") == 401
        assert await asyncio.to_thread(status, f"/?token={TOKEN}") == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert await asyncio.to_thread(status, "/metrics", bearer) == 200
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
        assert refused.value.response.status_code == 401
        async with websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=5,
                                      additional_headers=bearer) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"
