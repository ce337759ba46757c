"""DeviceSource with injected fake PortAudio streams (no sound hardware needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from daemon.sources import (
    BackoffPolicy,
    DeviceSource,
    SourceConfigError,
    list_input_devices,
    resolve_input_device,
)
from models.resample import SAMPLE_RATE_HZ
from tests.sources_helpers import Recorder

DEVICES = [
    {"index": 0, "name": "Built-in Microphone", "max_input_channels": 2,
     "default_samplerate": 48000.0, "hostapi": "ALSA", "is_default": False},
    {"index": 3, "name": "USB Audio CODEC", "max_input_channels": 2,
     "default_samplerate": 44100.0, "hostapi": "ALSA", "is_default": True},
    {"index": 4, "name": "USB Audio Loopback", "max_input_channels": 1,
     "default_samplerate": 16000.0, "hostapi": "ALSA", "is_default": False},
]
FAST_BACKOFF = BackoffPolicy(initial_seconds=0.05, max_seconds=0.1)


class FakePortAudioError(Exception):
    """Stands in for sounddevice.PortAudioError."""


@dataclass
class FakeStatus:
    input_overflow: bool = False


class FakeStream:
    """Calls the callback from its own thread, like PortAudio; can stall or go inactive."""

    def __init__(self, factory: FakeStreamFactory, *, device: int, samplerate: int,
                 blocksize: int, channels: int, dtype: str, callback) -> None:  # noqa: ANN001
        self.factory, self.device, self.samplerate = factory, device, samplerate
        self.blocksize, self.channels, self.callback = blocksize, channels, callback
        self.active = False
        self.closed = False
        self._stop = threading.Event()

    def start(self) -> None:
        self.active = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        block = np.zeros((self.blocksize, self.channels), dtype=np.float32)
        block[:, 0] = 0.5  # channel 0 at 0.5, others silent: mono mean is 0.5 / channels
        for index in range(self.factory.blocks_per_stream):
            if self._stop.wait(self.blocksize / self.samplerate / self.factory.speed):
                return
            self.callback(block, self.blocksize, None, FakeStatus(index % 10 == 9))
        if self.factory.go_inactive:
            self.active = False

    def stop(self) -> None:
        self._stop.set()
        self.active = False

    def close(self) -> None:
        self._stop.set()
        self.closed = True


class FakeStreamFactory:
    """sounddevice.InputStream stand-in: fails the first ``failures`` opens."""

    def __init__(self, failures: int = 0, blocks_per_stream: int = 10**6,
                 go_inactive: bool = False, speed: float = 1.0) -> None:
        self.failures, self.blocks_per_stream = failures, blocks_per_stream
        self.go_inactive, self.speed = go_inactive, speed
        self.streams: list[FakeStream] = []
        self.opens = 0

    def __call__(self, **kwargs: object) -> FakeStream:
        self.opens += 1
        if self.opens <= self.failures:
            raise FakePortAudioError("Error opening InputStream: Device unavailable [-9985]")
        stream = FakeStream(self, **kwargs)
        self.streams.append(stream)
        return stream


def _source(recorder: Recorder, factory: FakeStreamFactory, **kwargs: object) -> DeviceSource:
    return DeviceSource("mic", kwargs.pop("device", "codec"), on_state=recorder.on_state,
                        backoff=FAST_BACKOFF, stream_factory=factory,
                        device_lister=lambda: DEVICES, **kwargs)


async def _run_until(recorder: Recorder, source: DeviceSource, condition) -> None:  # noqa: ANN001
    consumer = asyncio.create_task(recorder.consume(source))
    try:
        await recorder.wait_for(condition, 20)
    finally:
        await asyncio.wait_for(source.close(), 5)
        await asyncio.wait_for(consumer, 5)


def test_resolve_by_index_name_part_and_default() -> None:
    assert resolve_input_device(3, DEVICES)["name"] == "USB Audio CODEC"
    assert resolve_input_device("4", DEVICES)["name"] == "USB Audio Loopback"
    assert resolve_input_device("built-in", DEVICES)["index"] == 0
    assert resolve_input_device("usb audio codec", DEVICES)["index"] == 3
    assert resolve_input_device(None, DEVICES)["index"] == 3
    with pytest.raises(SourceConfigError, match="ambiguous.*CODEC.*Loopback"):
        resolve_input_device("USB", DEVICES)
    with pytest.raises(SourceConfigError, match="default input device not found: no audio input"):
        resolve_input_device(None, [])


def test_unknown_device_lists_available_devices() -> None:
    with pytest.raises(SourceConfigError) as error:
        DeviceSource("mic", "Focusrite", sample_rate_hz=None, device_lister=lambda: DEVICES)
    message = str(error.value)
    assert "'Focusrite' not found" in message
    for device in DEVICES:
        assert device["name"] in message


def test_list_input_devices_without_hardware_does_not_raise() -> None:
    devices = list_input_devices()
    assert isinstance(devices, list)
    for device in devices:
        assert {"index", "name", "max_input_channels", "default_samplerate", "hostapi"} <= set(
            device)


async def test_chunks_arrive_resampled_to_mono_44100() -> None:
    recorder, factory = Recorder(), FakeStreamFactory(speed=4.0)
    source = _source(recorder, factory, device="Built-in", channels=2, block_seconds=0.05)
    await _run_until(recorder, source, lambda: recorder.n_samples >= SAMPLE_RATE_HZ)
    stream = factory.streams[0]
    assert (stream.samplerate, stream.channels, stream.blocksize) == (48000, 2, 2400)
    assert stream.closed
    samples = np.concatenate(recorder.chunks)
    np.testing.assert_allclose(samples[2000:], 0.25, atol=1e-3)
    assert recorder.state_names == ["connecting", "live", "ended"]
    assert source.overflows >= 1  # every 10th fake block flags an input overflow


async def test_open_failure_retries_and_recovers() -> None:
    recorder, factory = Recorder(), FakeStreamFactory(failures=2, speed=4.0)
    source = _source(recorder, factory, sample_rate_hz=32000)
    await _run_until(recorder, source, lambda: recorder.n_samples >= 4410)
    assert factory.opens == 3
    assert recorder.state_names == ["connecting", "error", "reconnecting", "error",
                                    "reconnecting", "live", "ended"]
    assert "Device unavailable" in (recorder.states[1][1] or "")
    assert factory.streams[0].samplerate == 32000


@pytest.mark.parametrize("go_inactive", [False, True])
async def test_stall_or_inactive_stream_reopens(go_inactive: bool) -> None:
    recorder = Recorder()
    factory = FakeStreamFactory(blocks_per_stream=5, go_inactive=go_inactive, speed=4.0)
    source = _source(recorder, factory, stall_seconds=0.6 if go_inactive else 0.3)
    started = time.monotonic()
    await _run_until(recorder, source, lambda: len(factory.streams) >= 3)
    names = recorder.state_names
    assert names[:5] == ["connecting", "live", "error", "reconnecting", "live"]
    message = recorder.states[2][1] or ""
    assert ("stopped" in message) if go_inactive else ("no audio" in message)
    assert all(stream.closed for stream in factory.streams)
    assert time.monotonic() - started < 10


async def test_full_queue_counts_overflows_instead_of_growing() -> None:
    recorder, factory = Recorder(), FakeStreamFactory(speed=50.0)
    source = _source(recorder, factory, queue_blocks=2, block_seconds=0.01)
    chunks = source.chunks()
    first = await asyncio.wait_for(anext(chunks), 5)
    assert first.size > 0
    await asyncio.sleep(0.3)  # the consumer does not pull: blocks overflow the queue
    assert source.overflows >= 10
    await asyncio.wait_for(source.close(), 5)
    assert factory.streams[0].closed
    await asyncio.wait_for(chunks.aclose(), 5)


def test_reopen_refreshes_portaudio_only_when_no_other_stream_is_open(monkeypatch):
    from daemon.sources import device as device_module

    source = device_module.DeviceSource("mic", "USB Audio CODEC", device_lister=lambda: DEVICES)
    monkeypatch.setattr(device_module, "_STREAMS_OPEN", set())
    assert source.may_refresh_portaudio()
    monkeypatch.setattr(device_module, "_STREAMS_OPEN", {id(source)})
    assert source.may_refresh_portaudio()
    monkeypatch.setattr(device_module, "_STREAMS_OPEN", {id(source), 12345})
    assert not source.may_refresh_portaudio()  # another source's stream is open
