"""A non-real-time file source (``realtime: false``) is read as fast as inference allows and
every window is classified (issue 21, F4): the real daemon, the shipped model, real music."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from daemon.harness import free_port, http_get
from tests.conftest import REPO_ROOT
from tests.real_helpers import daemon_process, require_command, write_config

pytestmark = pytest.mark.timeout(300)
GTZAN = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini"
CLIPS = [GTZAN / g / f"{g}.00000.flac" for g in ("blues", "classical", "country", "jazz",
                                                 "metal", "reggae")]


def concatenated(clips: list[Path], out: Path) -> Path:
    """One FLAC file of ``clips`` back to back (ffmpeg's concat demuxer)."""
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{clip}'\n" for clip in clips))
    subprocess.run([require_command("ffmpeg"), "-loglevel", "error", "-f", "concat", "-safe",
                    "0", "-i", str(listing), str(out)], check=True, timeout=120)
    return out


async def _source_when(port: int, predicate, timeout_seconds: float) -> dict:
    """The first /healthz entry of the only source that satisfies ``predicate`` (polled)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
        source = health["sources"][0]
        if predicate(source):
            return source
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.5)


async def test_a_non_realtime_file_has_every_window_classified(tmp_path):
    if not all(clip.is_file() for clip in CLIPS):
        pytest.skip("../shared/data is absent")
    audio = concatenated(CLIPS, tmp_path / "three-minutes.flac")  # 180 s of six genres
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "file", "kind": "url", "url": str(audio),
                                  "realtime": False}])
    with daemon_process(config, tmp_path / "daemon.log") as daemon:
        await daemon.wait_ready(port, 120)
        started = time.monotonic()
        ended = await _source_when(port, lambda s: s["state"] == "ended", 150)
        elapsed_seconds = time.monotonic() - started
        await asyncio.sleep(2.0)  # the last window's inference
        final = await _source_when(port, lambda s: True, 5)
    assert ended["audio_seconds"] == pytest.approx(180.0, abs=0.5), ended
    # genred-default: a window is 10 patches of 2.992 s, the hop one patch: 60 - 10 + 1
    assert final["windows_dropped"] == 0, final
    assert final["windows_classified"] == 51, final
    assert elapsed_seconds < 150, daemon.log()[-2000:]
