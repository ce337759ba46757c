"""Source kinds ``stdin`` and ``tcp``: raw interleaved PCM from stdin or one TCP producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import numpy as np

from daemon.messages import SourceState
from daemon.netaddr import is_loopback
from daemon.schema import ConfigError, check
from daemon.sources.base import (
    SourceBase,
    SourceConfig,
    SourceConfigError,
    StateCallback,
    check_layout,
)
from daemon.sources.decoding import PCM_FORMATS, PcmDecoder
from models.resample import SAMPLE_RATE_HZ, StreamingResampler

_LOGGER = logging.getLogger(__name__)

PCM_TRANSPORTS = ("stdin", "tcp")
READ_BYTES = 1 << 14
"""Default read size in bytes."""
STDIN_HINT = "pipe raw PCM into genred, e.g. `arecord -t raw ... | genred run --source stdin:`"


@dataclass(frozen=True, kw_only=True)
class PcmConfig(SourceConfig):
    """Config of a ``stdin`` or ``tcp`` source."""

    KINDS = PCM_TRANSPORTS

    sample_rate_hz: int | None = None
    """PCM rate in Hz (required)."""
    channels: int = 1
    """Interleaved channels (averaged to mono)."""
    pcm_format: Literal["s16le", "f32le"] = "s16le"
    """Sample format."""
    host: str = "127.0.0.1"
    """tcp: address to listen on for a PCM producer."""
    port: int = 0
    """tcp: port to listen on."""
    idle_timeout_seconds: float = 10.0
    """tcp: a producer silent this long is dropped (at once when another one is waiting)."""
    allow_remote: bool = False
    """tcp: allow a non-loopback ``host``. Producers send no token, so anyone who reaches the
    port can feed audio; without this the config refuses it (as a server bind without a
    token is refused)."""

    def validate(self, path: str) -> None:
        """Rate required; tcp needs a port."""
        super().validate(path)
        check(self.sample_rate_hz is not None, f"{path}.sample_rate_hz",
              "is required for raw PCM", self.sample_rate_hz)
        if self.kind == "tcp":
            check(0 < self.port < 65536, f"{path}.port", "must be in 1..65535", self.port)
            check(0 < self.idle_timeout_seconds <= 3600, f"{path}.idle_timeout_seconds",
                  "must be in (0, 3600]", self.idle_timeout_seconds)
            check(self.allow_remote or is_loopback(self.host), f"{path}.host",
                  "is not loopback and PCM producers send no token: listen on 127.0.0.1 (and "
                  "tunnel), or set allow_remote: true to accept audio from anyone who can "
                  "reach the port", self.host)
        check_layout(path, self.sample_rate_hz, self.channels)

    def build(self, on_state: StateCallback) -> PcmSource:
        """The PCM reader or listener."""
        return PcmSource(self.name, self.kind, self.sample_rate_hz or 44100,
                         channels=self.channels, pcm_format=self.pcm_format, host=self.host,
                         port=self.port, on_state=on_state,
                         idle_timeout_seconds=self.idle_timeout_seconds)

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> PcmConfig | None:
        """stdin:RATE[:CHANNELS[:FORMAT]] or tcp:PORT[:RATE[:CHANNELS[:FORMAT]]]."""
        kind, _, rest = spec.partition(":")
        if kind not in PCM_TRANSPORTS or "//" in rest:
            return None
        parts = [p for p in rest.split(":") if p] if rest else []
        try:
            port = int(parts.pop(0)) if kind == "tcp" else 0
            rate = int(parts[0]) if parts else 44100
            channels = int(parts[1]) if len(parts) > 1 else 1
        except (ValueError, IndexError):
            raise ConfigError(f"--source {kind}: expected numbers, got {':'.join(parts)!r}") \
                from None
        pcm_format = parts[2] if len(parts) > 2 else "s16le"
        if pcm_format not in PCM_FORMATS:
            raise ConfigError(f"--source {kind}: format must be s16le or f32le, "
                              f"got {pcm_format!r}")
        return cls(name=name, kind=kind, port=port, sample_rate_hz=rate, channels=channels,
                   pcm_format=pcm_format)  # type: ignore[arg-type]


class PcmSource(SourceBase):
    """Raw s16le/f32le PCM at ``sample_rate_hz`` from stdin or TCP, as 44.1 kHz mono chunks.

    ``transport="tcp"`` listens on ``host:port`` (0 = any free port; see :attr:`port` after
    :meth:`start`) and serves one producer at a time; one more may wait (a third is closed
    with a warning). A producer that sends nothing for ``idle_timeout_seconds`` is dropped,
    after one idle second when another is waiting; when the producer leaves the source
    reports "reconnecting" and serves the waiting one or the next. ``transport="stdin"``
    reads ``stdin_fd`` (default: this process's stdin) and reports "ended" at EOF.
    """

    def __init__(self, name: str, transport: str, sample_rate_hz: int, channels: int = 1,
                 pcm_format: str = "s16le", host: str = "127.0.0.1", port: int = 0,
                 on_state: StateCallback | None = None, read_bytes: int = READ_BYTES,
                 stdin_fd: int | None = None, idle_timeout_seconds: float = 10.0) -> None:
        if transport not in PCM_TRANSPORTS:
            raise SourceConfigError(f"unknown PCM transport {transport!r} ({PCM_TRANSPORTS})")
        if pcm_format not in PCM_FORMATS:
            raise SourceConfigError(f"unknown PCM format {pcm_format!r} ({sorted(PCM_FORMATS)})")
        if channels < 1 or sample_rate_hz <= 0:
            raise SourceConfigError(f"bad PCM layout: {channels} channels at {sample_rate_hz} Hz")
        super().__init__(name, on_state)
        self.kind = transport
        self.sample_rate_hz = sample_rate_hz
        self.host = host
        self.port = port
        """TCP port; the bound port once :meth:`start` has run."""
        self.read_bytes = read_bytes
        self.idle_timeout_seconds = idle_timeout_seconds
        self._stdin_fd = stdin_fd
        self._decoder = PcmDecoder(pcm_format, channels, clip=True, source_name=name)
        self._resampler = StreamingResampler(sample_rate_hz, SAMPLE_RATE_HZ)
        self._server: asyncio.Server | None = None
        self._producers: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._writer: asyncio.StreamWriter | None = None
        self._stdin_transport: asyncio.ReadTransport | None = None
        self._failure: str | None = None
        self._end_message: str | None = None

    async def start(self) -> None:
        """Start listening (tcp); idempotent. Raises SourceConfigError if the port is taken."""
        if self.kind != "tcp" or self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        except OSError as error:
            raise SourceConfigError(f"cannot listen on {self.host}:{self.port}: {error}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        _LOGGER.info("source %s: listening for PCM on %s:%d", self.name, self.host, self.port)
        if not is_loopback(self.host):
            _LOGGER.warning("source %s: %s:%d is not loopback and PCM producers are not "
                            "authenticated: anyone who reaches it can feed audio", self.name,
                            self.host, self.port)

    async def _prepare(self) -> None:
        """Listen before reporting "connecting" (tcp)."""
        await self.start()

    def _produce(self) -> AsyncIterator[np.ndarray]:
        """stdin until EOF, or TCP producers one after another until closed."""
        return self._stdin_chunks() if self.kind == "stdin" else self._tcp_chunks()

    async def _tcp_chunks(self) -> AsyncIterator[np.ndarray]:
        """Serve producers one after another until closed."""
        while not self._closed.is_set():
            producer = await self._producers.get()
            if producer is None:
                break
            reader, writer = producer
            self._writer = writer
            try:
                idle = self.idle_timeout_seconds
                async with contextlib.aclosing(self._read_stream(reader, idle)) as stream_chunks:
                    async for samples in stream_chunks:
                        yield samples
            finally:
                self._writer = None
                writer.close()
                self._decoder.reset()
            if not self._closed.is_set():
                self._reporter.report(SourceState.RECONNECTING,
                                      "producer disconnected; waiting for the next")

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept a producer if none is active or waiting; otherwise refuse it."""
        peer = writer.get_extra_info("peername")
        if self._closed.is_set() or self._producers.full():
            _LOGGER.warning("source %s: refusing PCM producer %s: one is connected and one "
                            "is waiting", self.name, peer)
            writer.close()
            return
        _LOGGER.info("source %s: PCM producer %s connected", self.name, peer)
        self._producers.put_nowait((reader, writer))

    async def _stdin_chunks(self) -> AsyncIterator[np.ndarray]:
        """Read stdin (a pipe/socket/tty through the loop, anything else directly) to EOF.

        Closed stdin is an error; stdin at EOF before any audio (/dev/null, systemd's
        default) ends the source, saying so.
        """
        try:  # Python sets sys.stdin to None when fd 0 was closed at start (fd 0 may be reused)
            if self._stdin_fd is None and sys.stdin is None:
                raise OSError("stdin is closed")
            pipe = os.fdopen(os.dup(0 if self._stdin_fd is None else self._stdin_fd), "rb",
                             buffering=0)
        except OSError:
            self._failure = f"stdin is closed; {STDIN_HINT}"
            self._reporter.report(SourceState.ERROR, self._failure)
            return
        mode = os.fstat(pipe.fileno()).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(pipe.fileno())):
            with pipe:  # a regular file or a device such as /dev/null
                async with contextlib.aclosing(self._file_chunks(pipe)) as file_chunks:
                    async for samples in file_chunks:
                        yield samples
            return
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        self._stdin_transport = transport
        try:
            async with contextlib.aclosing(self._read_stream(reader)) as stream_chunks:
                async for samples in stream_chunks:
                    yield samples
        finally:
            transport.close()
        tail = self._resampler.flush()
        if tail.size and not self._closed.is_set():
            yield tail

    async def _file_chunks(self, file: BinaryIO) -> AsyncIterator[np.ndarray]:
        """Chunks of a regular file or device redirected to stdin (reads return soon)."""
        total_bytes = 0
        while not self._closed.is_set():
            data = await asyncio.to_thread(file.read, self.read_bytes)
            total_bytes += len(data or b"")
            samples = self._convert(data) if data else self._resampler.flush()
            if samples.size:
                yield samples
            if not data:
                break
        if total_bytes == 0 and not self._closed.is_set():
            self._end_message = f"stdin was empty (is it /dev/null?); {STDIN_HINT}"

    def _finish(self) -> None:
        """An error stays reported; otherwise "ended" (with why, when stdin was empty)."""
        if self._failure is None or self._closed.is_set():
            self._reporter.report(SourceState.ENDED,
                                  "closed" if self._closed.is_set() else self._end_message)

    async def _read_stream(self, reader: asyncio.StreamReader,
                           idle_timeout_seconds: float | None = None) -> AsyncIterator[np.ndarray]:
        """Chunks of one byte stream until its EOF, a connection error or an idle timeout."""
        idle_seconds = 0.0
        while not self._closed.is_set():
            step_seconds = min(1.0, idle_timeout_seconds or 1.0)
            try:
                data = await asyncio.wait_for(reader.read(self.read_bytes),
                                              step_seconds if idle_timeout_seconds else None)
            except TimeoutError:
                idle_seconds += step_seconds
                if idle_seconds >= idle_timeout_seconds or not self._producers.empty():
                    _LOGGER.warning("source %s: PCM producer sent nothing for %.0f s; dropped%s",
                                    self.name, idle_seconds, "" if self._producers.empty()
                                    else " for the one waiting")
                    return
                continue
            except (ConnectionError, OSError) as error:
                _LOGGER.warning("source %s: read failed: %s", self.name, error)
                return
            idle_seconds = 0.0
            if not data:
                return
            samples = self._convert(data)
            if samples.size:
                yield samples

    def _convert(self, data: bytes) -> np.ndarray:
        """Bytes -> 44.1 kHz mono; the first samples report "live"."""
        samples = self._resampler.process(self._decoder.decode(data))
        if samples.size:
            self._reporter.report(SourceState.LIVE)
        return samples

    async def close(self) -> None:
        """Stop listening/reading and drop the producer; chunks() finishes."""
        self._closed.set()
        if self._server is not None:
            self._server.close()
        if self._writer is not None:
            self._writer.close()
        if self._stdin_transport is not None:
            self._stdin_transport.close()
        while not self._producers.empty():
            producer = self._producers.get_nowait()
            if producer is not None:
                producer[1].close()
        self._producers.put_nowait(None)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
