"""The daemon as a subprocess: real audio through ffmpeg, real VGG16, real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.conftest import REPO_ROOT
from tests.daemon_helpers import read_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, model: Path, port: int, sources: list[dict]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"model": str(model), "server": {"port": port},
                                    "sources": sources}))
    return path


def start_daemon(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "daemon", "run", "--config", str(config),
                             *extra], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


async def wait_http(port: int, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            await asyncio.to_thread(urllib.request.urlopen,
                                    f"http://127.0.0.1:{port}/healthz", None, 2)
            return
        except OSError:
            await asyncio.sleep(0.25)
    raise TimeoutError("daemon did not come up")


async def test_daemon_real_audio_predictions_and_sigterm(tmp_path, shared_data, vgg16_artifact,
                                                         ffmpeg):
    clip = shared_data / "cc-music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    port = free_port()
    config = write_config(tmp_path / "c.yaml", vgg16_artifact, port,
                          [{"name": "vibe", "kind": "url", "url": str(clip), "realtime": False,
                            "loop": True}])
    daemon = start_daemon(config)
    try:
        await wait_http(port, 90)
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["type"] == "hello" and hello["model"] == "test-vgg16-random"
            assert len(hello["labels"]) == 10
            messages = await read_until(ws, lambda m: m["type"] == "prediction", 90)
        prediction = messages[-1]
        assert prediction["source"] == "vibe" and prediction["genre"] in hello["labels"]
        assert abs(sum(prediction["probabilities"].values()) - 1) < 0.01
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if daemon.poll() is None:
            daemon.kill()
        output = daemon.communicate()[0]
    assert "Traceback" not in output, output


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("smoothing: {alpha: 3}\n", "smoothing.alpha: must be in (0, 1], got 3"),
        ("bogus: 1\n", "bogus: unknown key"),
        ("sources: [{name: a, kind: radio}]\n", "sources[0].kind: must be one of"),
        ("sources: [{name: a, kind: url, url: 'gopher://x'}]\n", "unknown URL scheme"),
        ("model: /no/such/model\nsources: []\n", "model: model folder not found"),
        ("server: {host: 0.0.0.0}\n", "server.token: is required"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(tmp_path, yaml_text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("GENRED_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(config)],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_exits_2(tmp_path, vgg16_artifact):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "c.yaml", vgg16_artifact, port, [])
        result = subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(config)],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr.strip().splitlines()[-1]


def test_unknown_device_exits_2(tmp_path, vgg16_artifact):
    config = write_config(tmp_path / "c.yaml", vgg16_artifact, free_port(),
                          [{"name": "mic", "kind": "device", "device": "NoSuchMicrophone"}])
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(config)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "NoSuchMicrophone" in result.stderr
