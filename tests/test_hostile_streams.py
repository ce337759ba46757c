"""Streams that connect and never send (issue 21, F5): the daemon's url sources stop ffmpeg
when it gives no audio for about 10 s and reconnect, whatever the scheme."""

from __future__ import annotations

import pytest

from daemon.harness import free_port
from models.audio import NETWORK_STALL_SECONDS
from tests.real_helpers import Collector, daemon_process, is_state, write_config
from tests.test_hostile_cli import silent_server  # noqa: F401

pytestmark = pytest.mark.timeout(120)


async def test_rtsp_and_udp_sources_that_never_send_reconnect_after_about_10_s(
        tmp_path, silent_server):  # noqa: F811
    port = free_port()
    backoff = {"initial_seconds": 0.2, "max_seconds": 0.5}
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "cam", "kind": "url", "url": f"rtsp://127.0.0.1:{silent_server}/x",
         "backoff": backoff},
        {"name": "mcast", "kind": "url", "url": f"udp://127.0.0.1:{free_port()}",
         "backoff": backoff}])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        collector = await Collector().open(f"ws://127.0.0.1:{port}/")
        try:
            for name in ("cam", "mcast"):
                stalled = await collector.wait_for(is_state(name, "reconnecting"),
                                                   NETWORK_STALL_SECONDS + 15)
                assert "no audio for" in stalled.message["message"], stalled.message
        finally:
            await collector.close()
    assert daemon.log().count("no audio for") >= 2
