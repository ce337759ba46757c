"""Source kind ``device``: a PortAudio input device (via sounddevice), reopened when it fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from daemon.messages import SourceState
from daemon.sources.base import (
    BackoffPolicy,
    SourceBase,
    SourceConfig,
    StateCallback,
    check_layout,
)
from daemon.sources.portaudio import list_input_devices, resolve_input_device
from models.resample import SAMPLE_RATE_HZ, StreamingResampler

_LOGGER = logging.getLogger(__name__)

QUEUE_BLOCKS = 64
"""Blocks buffered between the PortAudio thread and the event loop before overflowing."""
STREAM_CLOSE_TIMEOUT_SECONDS = 5.0
_STREAMS_OPEN: set[int] = set()
"""ids of DeviceSources holding an open PortAudio stream (re-initialising PortAudio would
break them, so a reopening source only refreshes the device list when no other is open)."""


@dataclass(frozen=True, kw_only=True)
class DeviceConfig(SourceConfig):
    """Config of a ``device`` source."""

    KINDS = ("device",)

    device: str | int | None = None
    """Input device index or (part of its) name; null = system default."""
    sample_rate_hz: int | None = None
    """Capture rate in Hz (null = device default)."""
    channels: int = 1
    """Channels captured (averaged to mono)."""
    fallback: Literal["demo"] | None = None
    """demo: play the bundled demo playlist when the machine has no input device at all
    (the shipped config.yaml sets it; null = never substitute, keep retrying the device)."""

    def validate(self, path: str) -> None:
        """Rate and channel ranges."""
        super().validate(path)
        check_layout(path, self.sample_rate_hz, self.channels)

    def build(self, on_state: StateCallback) -> DeviceSource:
        """The capture source (SourceConfigError for an unknown device)."""
        return DeviceSource(self.name, self.device, self.sample_rate_hz, channels=self.channels,
                            on_state=on_state, backoff=self.backoff)

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> DeviceConfig | None:
        """'device:' (system default) or 'device:NAME' / 'device:INDEX'."""
        kind, _, rest = spec.partition(":")
        if kind != "device" or "//" in rest:
            return None
        parts = [p for p in rest.split(":") if p] if rest else []
        device: str | int | None = parts[0] if parts else None
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return cls(name=name, kind="device", device=device)


class DeviceSource(SourceBase):
    """Captures from an input device and yields 44.1 kHz mono chunks.

    The PortAudio callback only hands a copy of each block to the event loop; a full queue
    counts an overflow. On an open error, a stall (no block for ``stall_seconds``) or an
    inactive stream it reports "error", closes, backs off, reports "reconnecting", reopens.
    """

    kind = "device"

    def __init__(self, name: str, device: str | int | None = None,
                 sample_rate_hz: int | None = None, block_seconds: float = 0.1,
                 channels: int = 1, on_state: StateCallback | None = None,
                 backoff: BackoffPolicy | None = None,
                 stream_factory: Callable[..., Any] | None = None,
                 stall_seconds: float = 3.0,
                 device_lister: Callable[[], list[dict]] | None = None,
                 queue_blocks: int = QUEUE_BLOCKS, rng: random.Random | None = None) -> None:
        super().__init__(name, on_state, backoff, rng)
        self.device = device
        self.sample_rate_hz = sample_rate_hz
        self.block_seconds = block_seconds
        self.channels = channels
        self.stall_seconds = stall_seconds
        self.queue_blocks = queue_blocks
        self._stream_factory = stream_factory
        self._device_lister = device_lister
        self.device_info: dict | None = None
        """The resolved device (re-resolved by name on every reopen); None until found."""
        devices = self._list_devices(refresh=False)
        if device is None and not devices:
            # The system default on a machine with no input yet (a USB mic not plugged in):
            # start anyway; chunks() reports "error" and retries until one appears.
            _LOGGER.warning("source %s: no audio input device yet; retrying until one "
                            "appears", name)
        else:
            self.device_info = resolve_input_device(device, devices)
        self._stream: Any = None
        self._queue: asyncio.Queue | None = None
        self._failure: str | None = None

    def may_refresh_portaudio(self) -> bool:
        """True when no other source holds an open stream (re-initialising is safe)."""
        return not (_STREAMS_OPEN - {id(self)})

    def _list_devices(self, refresh: bool) -> list[dict]:
        """Input devices from the injected lister or PortAudio."""
        if self._device_lister is not None:
            return self._device_lister()
        return list_input_devices(refresh=refresh)

    async def _produce(self) -> AsyncIterator[np.ndarray]:
        """Capture, reopening after failures with backoff, until close()."""
        attempt = 0
        while not self._closed.is_set():
            async with contextlib.aclosing(self._run_once(reopen=attempt > 0)) as run:
                async for samples in run:
                    yield samples
            attempt += 1
            if self._closed.is_set():
                break
            self._reporter.report(SourceState.ERROR, self._failure)
            if not await self._retrier.wait(self._closed):
                break
            self._reporter.report(SourceState.RECONNECTING, self._failure)

    def _finish(self) -> None:
        """A device source only ends when closed."""
        self._reporter.report(SourceState.ENDED, "closed")

    async def _run_once(self, reopen: bool) -> AsyncIterator[np.ndarray]:
        """Open the device, yield its chunks until it fails (``_failure``) or is closed."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_blocks)
        try:
            if reopen or self.device_info is None:
                self.device_info = resolve_input_device(
                    self.device, self._list_devices(self.may_refresh_portaudio()))
            stream, rate_hz = await self._open(queue)
            _STREAMS_OPEN.add(id(self))
        except Exception as error:  # PortAudioError, OSError, ValueError, config errors
            self._failure = f"cannot open input device {self.device!r}: {error}"
            return
        self._stream, self._queue = stream, queue
        resampler = StreamingResampler(rate_hz, SAMPLE_RATE_HZ)
        try:
            while True:
                block = await self._next_block(stream, queue)
                if block is None:
                    return
                mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block
                samples = resampler.process(mono)
                if samples.size:
                    self._note_audio()
                    yield samples
        finally:
            await self._release_stream()

    def _note_audio(self) -> None:
        """Report "live" on the first audio after an (re)open; feed the backoff reset."""
        if self._reporter.state != SourceState.LIVE:
            self._retrier.note_connected()
            self._reporter.report(SourceState.LIVE)
        self._retrier.note_audio()

    async def _next_block(self, stream: Any, queue: asyncio.Queue) -> np.ndarray | None:
        """The next captured block; None when closed or failed (``_failure`` set)."""
        poll_seconds = min(0.5, self.stall_seconds / 2)
        last_data_monotonic = time.monotonic()
        while not self._closed.is_set():
            try:
                return await asyncio.wait_for(queue.get(), poll_seconds)
            except TimeoutError:
                pass
            if not getattr(stream, "active", True):
                self._failure = "input stream stopped (device gone?)"
                return None
            if time.monotonic() - last_data_monotonic >= self.stall_seconds:
                self._failure = f"no audio from the device for {self.stall_seconds:.1f} s"
                return None
        return None

    async def _open(self, queue: asyncio.Queue) -> tuple[Any, int]:
        """Open and start the input stream (in a thread); returns (stream, rate in Hz)."""
        info = self.device_info
        assert info is not None
        rate_hz = int(self.sample_rate_hz or round(info["default_samplerate"]))
        channels = min(self.channels, max(1, info["max_input_channels"]))
        if channels != self.channels:
            _LOGGER.warning("source %s: device %r has %d input channels, using %d", self.name,
                            info["name"], info["max_input_channels"], channels)
        loop = asyncio.get_running_loop()
        enqueue = self._enqueue

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            with contextlib.suppress(RuntimeError):  # RuntimeError: the event loop is closed
                loop.call_soon_threadsafe(enqueue, queue, indata.copy(),
                                          bool(getattr(status, "input_overflow", False)))

        factory = self._stream_factory or _default_stream_factory()
        stream = await asyncio.to_thread(
            _start_stream, factory, device=info["index"], samplerate=rate_hz,
            blocksize=max(1, round(rate_hz * self.block_seconds)), channels=channels,
            dtype="float32", callback=callback)
        _LOGGER.info("source %s: capturing from [%d] %r at %d Hz, %d channel(s)", self.name,
                     info["index"], info["name"], rate_hz, channels)
        return stream, rate_hz

    def _enqueue(self, queue: asyncio.Queue, block: np.ndarray, input_overflow: bool) -> None:
        """Event-loop side of the callback: queue the block or count an overflow."""
        if input_overflow:
            self.overflows += 1
        try:
            queue.put_nowait(block)
        except asyncio.QueueFull:
            self.overflows += 1

    async def _release_stream(self) -> None:
        """Stop and close the current stream (once), in a thread with a timeout."""
        stream, self._stream, self._queue = self._stream, None, None
        _STREAMS_OPEN.discard(id(self))
        if stream is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(_stop_stream, stream),
                                   STREAM_CLOSE_TIMEOUT_SECONDS)
        except Exception as error:  # PortAudioError or a hung driver
            _LOGGER.warning("source %s: closing the input stream failed: %r", self.name, error)

    async def close(self) -> None:
        """Stop capturing and close the stream; chunks() finishes."""
        self._closed.set()
        queue = self._queue
        if queue is not None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        await self._release_stream()


def _default_stream_factory() -> Callable[..., Any]:
    """sounddevice.InputStream, imported on first use (PortAudio may be missing)."""
    import sounddevice

    return sounddevice.InputStream


def _start_stream(factory: Callable[..., Any], **kwargs: Any) -> Any:
    """Create and start a stream; close it again if starting fails."""
    stream = factory(**kwargs)
    try:
        stream.start()
    except BaseException:
        stream.close()
        raise
    return stream


def _stop_stream(stream: Any) -> None:
    """Stop and close a stream (blocking PortAudio calls)."""
    try:
        stream.stop()
    finally:
        stream.close()
