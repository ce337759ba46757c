"""The daemon's live page in a real headless Chromium, driven over the DevTools protocol.

Two clips of different genres are fed in sequence through a `tcp` PCM source; a hand-set
spectral model (loaded through the normal artifact path) makes the label change
deterministic: a jazz clip low-passed at 500 Hz reads "low", a drum-and-bass clip
high-passed at 6 kHz reads "high". The page's genre text must follow.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from daemon.harness import free_port
from tests.real_helpers import (
    build_spectral_artifact,
    daemon_process,
    render_pcm,
    require_command,
    write_config,
)

pytestmark = pytest.mark.timeout(300)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=900,640",
                  "--remote-debugging-port=0")
LOW_CLIP = ("Kevin_MacLeod_-_Vibe_Ace.hq.ogg", ",".join(["lowpass=f=500"] * 4))
HIGH_CLIP = ("admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
             ",".join(["highpass=f=6000"] * 4) + ",volume=24dB,alimiter=limit=0.8")
FEED_SECONDS = 40.0
GENRE_JS = "(document.querySelector('.card .genre') || {}).textContent || ''"


@pytest.fixture(scope="module")
def spectral_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spectral_artifact(tmp_path_factory.mktemp("artifacts") / "spectral")


@contextlib.contextmanager
def chromium(url: str, profile: Path) -> Iterator[int]:
    """Headless Chromium showing ``url``; yields its DevTools port; kills its process group."""
    binary = require_command("chromium")
    process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield _devtools_port(profile, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # renderers/zygote of the group
            os.killpg(process.pid, signal.SIGKILL)


def _devtools_port(profile: Path, process: subprocess.Popen) -> int:
    """The port Chromium wrote to DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"chromium exited with {process.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(marker.read_text().split()[0])
        time.sleep(0.2)
    pytest.fail("chromium wrote no DevToolsActivePort in 60 s")


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def attach(cls, devtools_port: int, page_url: str) -> AsyncIterator[DevTools]:
        target = await asyncio.wait_for(asyncio.to_thread(_page_target, devtools_port,
                                                          page_url), 30)
        async with websockets.connect(target, max_size=None) as ws:
            yield cls(ws)

    async def call(self, method: str, timeout_seconds: float = 20.0, **params: Any) -> dict:
        call_id = next(self._ids)
        await self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))

        async def reply() -> dict:
            while True:
                message = json.loads(await self._ws.recv())
                if message.get("id") == call_id:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message["result"]

        return await asyncio.wait_for(reply(), timeout_seconds)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_until(self, expression: str, expected: str, timeout_seconds: float) -> float:
        """Poll ``expression`` until it equals ``expected``; returns when (monotonic)."""
        async def poll() -> float:
            while await self.evaluate(expression) != expected:
                await asyncio.sleep(0.25)
            return time.monotonic()

        try:
            return await asyncio.wait_for(poll(), timeout_seconds)
        except TimeoutError:
            text = await self.evaluate("document.body.innerText")
            pytest.fail(f"page never showed {expected!r} in {timeout_seconds} s:\n{text}")

    async def screenshot(self, path: Path) -> Path:
        result = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(result["data"]))
        return path


def _page_target(devtools_port: int, page_url: str) -> str:
    """webSocketDebuggerUrl of the page target showing ``page_url`` (waits for it)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", None,
                                    5) as response:
            targets = json.load(response)
        for target in targets:
            if target.get("type") == "page" and target.get("url", "").startswith(page_url):
                return str(target["webSocketDebuggerUrl"])
        time.sleep(0.2)
    raise RuntimeError(f"no page target for {page_url}")


async def feed(writer: asyncio.StreamWriter, pcm: bytes) -> None:
    writer.write(pcm)
    await asyncio.wait_for(writer.drain(), 60)


async def test_page_follows_the_genre_of_two_clips(tmp_path, spectral_artifact, shared_data,
                                                   ffmpeg):
    low_pcm = render_pcm(shared_data / "cc-music" / LOW_CLIP[0], FEED_SECONDS, LOW_CLIP[1])
    high_pcm = render_pcm(shared_data / "cc-music" / HIGH_CLIP[0], FEED_SECONDS, HIGH_CLIP[1])
    port, pcm_port = free_port(), free_port()
    feed_source = {"name": "turntable", "kind": "tcp", "port": pcm_port,
                   "sample_rate_hz": 44100, "pcm_format": "s16le"}
    config = write_config(tmp_path / "config.yaml", spectral_artifact, port, [feed_source],
                          window={"hop_seconds": 1.0})
    page_url = f"http://127.0.0.1:{port}/"
    with daemon_process(config, tmp_path / "daemon.log") as daemon:
        await daemon.wait_ready(port)
        with chromium(page_url, tmp_path / "chromium-profile") as devtools_port:
            async with DevTools.attach(devtools_port, page_url) as page:
                await page.wait_until("document.getElementById('conn').textContent", "live", 30)
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", pcm_port), 10)
                try:
                    await feed(writer, low_pcm)
                    await page.wait_until(GENRE_JS, "low", 60)
                    first = await page.screenshot(tmp_path / "page-low.png")
                    fed_high = time.monotonic()
                    await feed(writer, high_pcm)
                    changed = await page.wait_until(GENRE_JS, "high", 60)
                    second = await page.screenshot(tmp_path / "page-high.png")
                    state = await page.evaluate("document.querySelector('.card .state')"
                                                ".textContent")
                    bars = await page.evaluate("document.querySelectorAll('.card .row').length")
                finally:
                    writer.close()
    print(f"\npage showed 'high' {changed - fed_high:.2f} s after the second clip was sent; "
          f"screenshots: {first} {second}")
    assert state == "live" and bars == 2
    for png in (first, second):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "Traceback" not in daemon.log()
