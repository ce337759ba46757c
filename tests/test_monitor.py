"""The ``monitor`` source (what this machine plays) against a real PulseAudio null sink:
`genred devices` lists the sink's monitor apart from the inputs, and a daemon with
``--source monitor:`` classifies a clip played into the default output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daemon.harness import free_port, stop_process
from daemon.sources import MonitorConfig, source_from_spec
from tests.conftest import REPO_ROOT
from tests.real_helpers import (
    Collector,
    PulseAudio,
    daemon_process,
    is_prediction,
    start_ffmpeg,
    write_config,
)
from tests.test_real_device import PLAYED_CLIP, pulse  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(300)


def test_monitor_spec_and_config() -> None:
    assert source_from_spec("monitor:", "m", {}) == MonitorConfig(name="m", kind="monitor")
    assert source_from_spec("monitor:speakers", "m", {}).sink == "speakers"


def test_devices_lists_monitors_apart_from_inputs(pulse) -> None:  # noqa: F811
    pulse.start()
    env = {**os.environ, **pulse.env}
    result = subprocess.run([sys.executable, "-m", "daemon", "devices", "--json"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    listed = json.loads(result.stdout)
    assert listed["monitors"] == [f"{PulseAudio.SINK}.monitor"]
    assert isinstance(listed["inputs"], list)
    text = subprocess.run([sys.executable, "-m", "daemon", "devices"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60).stdout
    assert f"     {PulseAudio.SINK}.monitor" in text and "monitor:" in text


async def test_the_daemon_hears_what_the_machine_plays(tmp_path, pulse,  # noqa: F811
                                                       shared_data) -> None:
    """A clip played into the default output reaches predictions via its monitor."""
    pulse.start()
    env = {key: value for key, value in pulse.env.items() if key != "PULSE_SOURCE"}
    player = start_ffmpeg("-re", "-stream_loop", "-1", "-i",
                          str(shared_data / "cc-music" / PLAYED_CLIP), "-vn", "-f", "pulse",
                          "genred-test", env=env)  # the default output: the null sink
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "speakers", "kind": "monitor"}],
                          history={"enabled": False})
    try:
        with daemon_process(config, tmp_path / "daemon.log", env=env) as daemon:
            await daemon.wait_ready(port)
            client = await Collector().open(f"ws://127.0.0.1:{port}/")
            try:
                message = (await client.wait_for(is_prediction("speakers"), 120)).message
            finally:
                await client.close()
            assert "capturing genred_sink.monitor" in daemon.log()
    finally:
        stop_process(player)
    assert message["genre"] in message["probabilities"]
