"""The device source against a real sound server: PulseAudio with a null sink, captured
through PortAudio's ALSA `pulse` device by the daemon as a subprocess."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.harness import free_port, stop_process
from daemon.sources import BackoffPolicy, DeviceSource, SourceConfigError
from tests.conftest import REPO_ROOT
from tests.real_helpers import (
    Collector,
    PulseAudio,
    build_spectral_artifact,
    daemon_process,
    is_prediction,
    is_state,
    require_command,
    start_ffmpeg,
    write_config,
)
from tests.sources_helpers import Recorder

pytestmark = pytest.mark.timeout(300)
FAST_BACKOFF = {"initial_seconds": 0.5, "max_seconds": 1.0, "jitter_fraction": 0.0}
PLAYED_CLIP = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
LOOPED_CLIP = "admiralbob77_-_Choice_-_Drum-bass.hq.ogg"


@pytest.fixture(scope="module")
def spectral_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spectral_artifact(tmp_path_factory.mktemp("artifacts") / "spectral")


@pytest.fixture
def pulse() -> Iterator[PulseAudio]:
    """A PulseAudio server (not started yet); killed and removed afterwards."""
    require_command("pulseaudio")
    require_command("pactl")
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        pytest.fail("the ALSA pulse plugin is missing (libasound2-plugins; scripts/dev test)")
    runtime_dir = Path(tempfile.mkdtemp(prefix="genred-pulse-"))  # short: socket path limit
    server = PulseAudio(runtime_dir)
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(runtime_dir, ignore_errors=True)


def play_into_sink(pulse: PulseAudio, clip: Path) -> subprocess.Popen:
    """ffmpeg playing ``clip`` in a loop, in real time, into the null sink."""
    return start_ffmpeg("-re", "-stream_loop", "-1", "-i", str(clip), "-vn", "-f", "pulse",
                        "-device", PulseAudio.SINK, "genred-test", env=pulse.env)


def device_config(tmp_path: Path, model: Path, port: int, device: str | None,
                  extra_sources: list[dict] | None = None) -> Path:
    mic = {"name": "mic", "kind": "device", "device": device, "backoff": FAST_BACKOFF}
    return write_config(tmp_path / "config.yaml", model, port, [mic, *(extra_sources or [])],
                        window={"hop_seconds": 1.0})


def input_devices_seen_by(env: dict[str, str]) -> list[dict]:
    """What a fresh process with ``env`` lists (PortAudio caches its list per process)."""
    code = "import json; from daemon.sources import list_input_devices as l; " \
           "print(json.dumps(l()))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, **env})
    return json.loads(result.stdout.strip().splitlines()[-1])


async def test_capture_survives_a_sound_server_crash(tmp_path, pulse, spectral_artifact,
                                                     shared_data, ffmpeg):
    pulse.start()
    player = play_into_sink(pulse, shared_data / "cc-music" / PLAYED_CLIP)
    port = free_port()
    looped = {"name": "file", "kind": "url", "url": str(shared_data / "cc-music" / LOOPED_CLIP),
              "loop": True, "realtime": True}
    config = device_config(tmp_path, spectral_artifact, port, "pulse", [looped])
    try:
        with daemon_process(config, tmp_path / "daemon.log", pulse.env) as daemon:
            await daemon.wait_ready(port)
            client = await Collector().open(f"ws://127.0.0.1:{port}/")
            await client.wait_for(is_prediction("mic"), 90)
            await client.wait_for(is_prediction("file"), 30)

            killed = time.monotonic()
            pulse.kill()
            stop_process(player)
            error = await client.wait_for(is_state("mic", "error"), 15)
            await client.wait_for(is_state("mic", "reconnecting"), 10, since=error.index)
            retry_failed = await client.wait_for(  # a reopen while the server is down fails
                lambda m: is_state("mic", "error")(m) and "not found" in (m["message"] or ""),
                15, since=error.index + 1)
            other = await client.wait_for(is_prediction("file"), 10, since=error.index)
            await client.wait_for(is_prediction("file"), 10, since=other.index + 1)

            restarted = time.monotonic()
            pulse.start()
            player = play_into_sink(pulse, shared_data / "cc-music" / PLAYED_CLIP)
            live = await client.wait_for(is_state("mic", "live", "warming_up"), 20,
                                         since=retry_failed.index)
            resumed = await client.wait_for(is_prediction("mic"), 20, since=live.index)
            await client.close()
    finally:
        stop_process(player)
    print(f"\ndevice error reported {error.at - killed:.2f} s after the crash; after the "
          f"restart: live in {live.at - restarted:.2f} s, first prediction in "
          f"{resumed.at - restarted:.2f} s")
    assert error.message["message"] and "device" in error.message["message"]
    assert error.at - killed < 5.0
    assert resumed.at - restarted < 10.0
    assert "error" in client.states("mic") and "reconnecting" in client.states("mic")
    assert not [s for s in client.states("file") if s in ("error", "reconnecting")]
    assert "Traceback" not in daemon.log()


async def test_daemon_starts_before_the_default_device_exists(tmp_path, pulse,
                                                              spectral_artifact, shared_data,
                                                              ffmpeg):
    if input_devices_seen_by(pulse.env):
        pytest.skip("this machine has sound input devices without a sound server")
    port = free_port()
    config = device_config(tmp_path, spectral_artifact, port, None)
    player = None
    try:
        with daemon_process(config, tmp_path / "daemon.log", pulse.env) as daemon:
            await daemon.wait_ready(port)
            client = await Collector().open(f"ws://127.0.0.1:{port}/")
            error = await client.wait_for(is_state("mic", "error"), 20)
            assert "no audio input devices" in error.message["message"]
            await client.wait_for(is_state("mic", "reconnecting"), 10)
            plugged = time.monotonic()
            pulse.start()  # "the USB mic is plugged in"
            player = play_into_sink(pulse, shared_data / "cc-music" / PLAYED_CLIP)
            warming = await client.wait_for(is_state("mic", "warming_up"), 20)
            await client.close()
            print(f"\ncapture started {warming.at - plugged:.2f} s after the device appeared")
    finally:
        stop_process(player)


def test_named_device_that_does_not_exist_is_a_startup_error(tmp_path, pulse,
                                                               spectral_artifact):
    config = device_config(tmp_path, spectral_artifact, free_port(), "pulse")
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(config)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **pulse.env}, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "'pulse' not found" in result.stderr
    assert "Traceback" not in result.stderr


async def test_default_device_appearing_later_is_opened() -> None:
    """Unit level: no devices at construction -> error/retry -> the device appears -> live."""
    from tests.test_sources_device import DEVICES, FakeStreamFactory

    listings = iter([[], [], DEVICES])
    recorder, factory = Recorder(), FakeStreamFactory(speed=4.0)
    source = DeviceSource("mic", None, on_state=recorder.on_state, stream_factory=factory,
                          backoff=BackoffPolicy(initial_seconds=0.05, max_seconds=0.1),
                          device_lister=lambda: next(listings, DEVICES))
    consumer = asyncio.create_task(recorder.consume(source))
    try:
        await recorder.wait_for(lambda: recorder.n_samples > 0, 10)
    finally:
        await asyncio.wait_for(source.close(), 5)
        await asyncio.wait_for(consumer, 5)
    assert recorder.state_names[:4] == ["connecting", "error", "reconnecting", "live"]
    assert "no audio input devices" in (recorder.states[1][1] or "")
    with pytest.raises(SourceConfigError, match="'USB mic' not found"):
        DeviceSource("mic", "USB mic", device_lister=lambda: [])
