"""The url source against a real radio server: icecast2 on loopback fed by ffmpeg as the
source client; the server goes away and comes back while the daemon listens."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.harness import free_port, stop_process
from tests.real_helpers import (
    Collector,
    Icecast,
    build_spectral_artifact,
    daemon_process,
    is_prediction,
    is_state,
    require_command,
    start_ffmpeg,
    write_config,
)

pytestmark = pytest.mark.timeout(300)
CLIP = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
RECOVERY_BOUND_SECONDS = 10.0


@pytest.fixture(scope="module")
def spectral_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spectral_artifact(tmp_path_factory.mktemp("artifacts") / "spectral")


@pytest.fixture
def icecast(tmp_path: Path) -> Iterator[Icecast]:
    """An icecast2 server (not started yet) on a free loopback port; stopped afterwards."""
    require_command("icecast2")
    if not Path("/etc/icecast2/icecast.xml").is_file():
        pytest.fail("/etc/icecast2/icecast.xml is missing (package icecast2; scripts/dev test)")
    server = Icecast(tmp_path, free_port())
    try:
        yield server
    finally:
        server.cleanup()


def broadcast(icecast: Icecast, clip: Path, log: Path) -> subprocess.Popen:
    """ffmpeg as the source client: ``clip`` in a loop, in real time, as 128 kb/s MP3.

    ``-vn``: the .ogg files carry cover art, which would go out as a video stream.
    """
    return start_ffmpeg("-re", "-stream_loop", "-1", "-i", str(clip), "-vn", "-c:a",
                        "libmp3lame", "-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3",
                        icecast.source_url, log=log)


async def test_radio_stream_recovers_after_the_server_restarts(tmp_path, icecast,
                                                               spectral_artifact,
                                                               shared_data, ffmpeg):
    clip = shared_data / "cc-music" / CLIP
    icecast.start()
    source_client = broadcast(icecast, clip, tmp_path / "source-client.log")
    port = free_port()
    radio = {"name": "radio", "kind": "url", "url": icecast.url, "realtime": False,
             "backoff": {"initial_seconds": 0.5, "max_seconds": 2.0, "jitter_fraction": 0.0}}
    config = write_config(tmp_path / "config.yaml", spectral_artifact, port, [radio],
                          window={"hop_seconds": 1.0})
    try:
        with daemon_process(config, tmp_path / "daemon.log") as daemon:
            await daemon.wait_ready(port)
            client = await Collector().open(f"ws://127.0.0.1:{port}/")
            first = await client.wait_for(is_prediction("radio"), 90)

            stopped = time.monotonic()
            icecast.stop()
            stop_process(source_client)
            lost = await client.wait_for(is_state("radio", "reconnecting"), 20,
                                         since=first.index)
            await asyncio.sleep(4.0)  # down long enough for reconnects to fail

            icecast.start()
            restarted = time.monotonic()
            source_client = broadcast(icecast, clip, tmp_path / "source-client.log")
            live = await client.wait_for(is_state("radio", "live"), 30, since=lost.index)
            resumed = await client.wait_for(is_prediction("radio"), 30, since=live.index)
            await client.close()
    finally:
        stop_process(source_client)
    recovery = resumed.at - restarted
    print(f"\nreconnecting reported {lost.at - stopped:.2f} s after icecast stopped; "
          f"icecast back up -> live {live.at - restarted:.2f} s, -> first prediction "
          f"{recovery:.2f} s")
    assert lost.at - stopped < 12.0  # ffmpeg sees the closed connection (rw_timeout 10 s)
    assert recovery < RECOVERY_BOUND_SECONDS
    assert resumed.message["window_end_ms"] > first.message["window_end_ms"]
