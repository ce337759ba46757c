"""Source kind ``url``: a file or network stream decoded by an ffmpeg subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.messages import SourceState
from daemon.redact import has_unbounded_user_info, redact_url
from daemon.schema import check
from daemon.sources.base import BackoffPolicy, SourceBase, SourceConfig, StateCallback
from daemon.sources.decoding import PcmDecoder
from daemon.sources.pacing import RealtimePacer
from models.audio import (
    NETWORK_STALL_SECONDS,
    AudioDecodeError,
    explain_ffmpeg_error,
    ffmpeg_decode_command,
)
from models.resample import SAMPLE_RATE_HZ

_LOGGER = logging.getLogger(__name__)

READ_BYTES = 4 * SAMPLE_RATE_HZ // 10
"""Default stdout read size in bytes: 0.1 s of f32 mono at 44.1 kHz."""
KILL_AFTER_SECONDS = 2.0
NETWORK_RW_TIMEOUT_MICROSECONDS = 10_000_000
STDIN_URLS = ("-", "pipe:", "pipe:0")
_STDERR_TAIL_BYTES = 2000
URL_SCHEMES = ("http", "https", "file", "rtmp", "rtsp", "udp", "tcp", "srt")
_SCHEME_HINTS = {"hls": "ffmpeg opens HLS from the playlist's own URL: use http(s)://.../x.m3u8"}


@dataclass(frozen=True, kw_only=True)
class UrlConfig(SourceConfig):
    """Config of a ``url`` source."""

    KINDS = ("url",)

    url: str
    """A file path or a URL ffmpeg reads (http(s) radio, file, ...)."""
    realtime: bool = True
    """Files: read at real-time pace (false: as fast as the pipeline allows)."""
    loop: bool = False
    """Files: restart at the end instead of ending."""

    def validate(self, path: str) -> None:
        """A URL with a known scheme or a path to an existing file."""
        super().validate(path)
        check(bool(self.url), f"{path}.url", "is required for kind url", self.url)
        shown = redact_url(self.url)
        if "://" in self.url:
            scheme = self.url.split("://", 1)[0].lower()
            check(scheme in URL_SCHEMES, f"{path}.url", _SCHEME_HINTS.get(
                scheme, f"unknown URL scheme (known: {URL_SCHEMES})"), shown)
            check(not has_unbounded_user_info(self.url), f"{path}.url",
                  "has whitespace in its user:password (percent-encode it: a space is %20, "
                  "@ is %40)", shown)
        elif self.url != "-":
            check(Path(self.url).is_file(), f"{path}.url", "file not found", self.url)

    def resolve_paths(self, resolve: Callable[[str], str]) -> UrlConfig:
        """A local file path made absolute by ``resolve``."""
        return replace(self, url=resolve(self.url)) if self.url else self

    def build(self, on_state: StateCallback) -> UrlSource:
        """The ffmpeg-decoded source."""
        return UrlSource(self.name, self.url, realtime=self.realtime, loop=self.loop,
                         on_state=on_state, backoff=self.backoff)

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> UrlConfig:
        """Any SPEC is a file path or URL (so this kind is tried last)."""
        return cls(name=name, kind="url", url=spec, loop=bool(options.get("loop")),
                   realtime=not options.get("no_realtime"))


def is_network_url(url: str) -> bool:
    """True for URLs with a scheme other than file:// (ffmpeg reads them over a network)."""
    return "://" in url and not url.lower().startswith("file://")


class UrlSource(SourceBase):
    """Decodes ``url`` (file path, file:// or network URL) with ffmpeg to 44.1 kHz mono.

    A local file ends ("ended") or restarts when ``loop`` is set; a network stream that ends
    or fails is retried with backoff forever ("reconnecting") until :meth:`close`. With
    ``realtime`` a local file is read at the wall clock's pace by the daemon itself (ffmpeg
    decodes ahead and waits on the full pipe, costing no CPU meanwhile), continuously across
    loop restarts; a network stream always arrives at its own pace.
    """

    kind = "url"

    def __init__(self, name: str, url: str, realtime: bool = False, loop: bool = False,
                 on_state: StateCallback | None = None, backoff: BackoffPolicy | None = None,
                 read_bytes: int = READ_BYTES, rng: random.Random | None = None) -> None:
        super().__init__(name, on_state, backoff, rng)
        self.url = url
        self.realtime = realtime
        self.loop = loop
        self.read_bytes = read_bytes
        self.is_network = is_network_url(url)
        self._process: asyncio.subprocess.Process | None = None
        self._stop_task: asyncio.Task | None = None
        self._reading = False
        self._failure: str | None = None
        self.pacer = RealtimePacer(SAMPLE_RATE_HZ) if realtime and not self.is_network else None
        """Wall-clock pacing of a real-time local file (None: deliver as decoded)."""
        self.waits_for_consumer = not realtime and not self.is_network
        self.stall_seconds = NETWORK_STALL_SECONDS if self.is_network else None
        """A network stream whose ffmpeg gives no audio this long is stopped and retried (the
        watchdog for every scheme: rtsp and udp reads are not bounded by -rw_timeout)."""

    @property
    def pid(self) -> int | None:
        """Process id of the running ffmpeg, if any."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """The ffmpeg command line of one decoding run."""
        if self.is_network:
            extra: tuple[str, ...] = ("-rw_timeout", str(NETWORK_RW_TIMEOUT_MICROSECONDS))
        elif self.loop and self.url not in STDIN_URLS:
            extra = ("-stream_loop", "-1")  # one process for every pass: no restart cost or gap
        else:
            extra = ()
        # A network stream arrives at its own pace (-re would only turn the server's initial
        # burst into a constant lag); local files are paced by self.pacer, not by ffmpeg's
        # -re, which polls every 10 ms and so costs each real-time source ~0.5 % of a core.
        return ffmpeg_decode_command(self.url, SAMPLE_RATE_HZ, extra_input_args=extra)

    async def _produce(self) -> AsyncIterator[np.ndarray]:
        """ffmpeg runs until the stream ends (or forever, looping/reconnecting) or close()."""
        while not self._closed.is_set():
            had_audio = False
            async with contextlib.aclosing(self._run_once()) as run:
                async for samples in run:
                    if not had_audio:
                        had_audio = True
                        self._retrier.note_connected()
                        self._reporter.report(SourceState.LIVE)
                    self._retrier.note_audio()
                    if self.pacer is not None and not await self._wait_due(samples.size):
                        break
                    yield samples
            if self._closed.is_set() or not await self._after_run(had_audio):
                break

    def _finish(self) -> None:
        """A natural end was reported by _after_run; only close() is left to report."""
        if self._closed.is_set():
            self._reporter.report(SourceState.ENDED, "closed")

    async def _wait_due(self, n_samples: int) -> bool:
        """Sleep until the next ``n_samples`` are due by the wall clock; False if closed."""
        delay_seconds = self.pacer.delay_seconds(n_samples)
        if delay_seconds > 0:  # at most one read's worth (0.1 s), so close() waits no longer
            await asyncio.sleep(delay_seconds)
        return not self._closed.is_set()

    async def _after_run(self, had_audio: bool) -> bool:
        """Decide what follows one ffmpeg run; True to run again."""
        message = self._failure or "stream ended"
        if not self.is_network:
            if had_audio and self.loop and self.url not in STDIN_URLS:
                _LOGGER.debug("source %s: restarting %s", self.name, self.url)
                return True
            if had_audio:
                self._reporter.report(SourceState.ENDED, self._failure)
            else:
                self._reporter.report(SourceState.ERROR, f"no audio decoded: {message}")
            return False
        self._reporter.report(SourceState.RECONNECTING, message)
        return await self._retrier.wait(self._closed)

    async def _run_once(self) -> AsyncIterator[np.ndarray]:
        """One ffmpeg run: yields its chunks, sets ``_failure`` when it did not end cleanly."""
        self._failure = None
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=None if self.url in STDIN_URLS else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except (OSError, AudioDecodeError) as error:
            self._failure = f"cannot start ffmpeg: {error}"
            return
        self._process, self._stop_task = process, None
        stderr_tail = bytearray()
        stderr_task = asyncio.create_task(_collect_tail(process.stderr, stderr_tail))
        decoder = PcmDecoder("f32le", clip=False, source_name=self.name)
        try:
            while not self._closed.is_set():
                data = await self._read(process)
                if not data:
                    break
                samples = decoder.decode(data)
                if samples.size:
                    yield samples
        finally:
            await self._stop_process(process)
            await _finish_task(stderr_task)
            self._note_exit(process, stderr_tail)

    async def _read(self, process: asyncio.subprocess.Process) -> bytes:
        """ffmpeg's next bytes; b"" at its end or when it stalled past ``stall_seconds``."""
        self._reading = True
        try:
            return await asyncio.wait_for(process.stdout.read(self.read_bytes),
                                          self.stall_seconds)
        except TimeoutError:
            self._failure = f"no audio for {self.stall_seconds:.0f} s"
            _LOGGER.warning("source %s: ffmpeg gave no audio for %.0f s; stopping it", self.name,
                            self.stall_seconds)
            return b""
        finally:
            self._reading = False

    def _note_exit(self, process: asyncio.subprocess.Process, stderr_tail: bytearray) -> None:
        """Record (and log) why ffmpeg stopped, unless it was stopped by close() or stalled."""
        if self._closed.is_set() or self._failure is not None:
            return
        tail = stderr_tail.decode("utf-8", "replace").strip()[-400:]
        if process.returncode != 0:
            self._failure = explain_ffmpeg_error(tail) or f"ffmpeg exit status {process.returncode}"
            _LOGGER.warning("source %s: ffmpeg exited with status %s: %s", self.name,
                            process.returncode, tail)
        elif tail:
            _LOGGER.info("source %s: ffmpeg: %s", self.name, tail)

    async def _stop_process(self, process: asyncio.subprocess.Process) -> None:
        """Terminate (then kill) ``process`` and reap it; shared by close() and the reader."""
        if self._stop_task is None or self._process is not process:
            self._process = process
            self._stop_task = asyncio.create_task(self._terminate(process))
        await asyncio.shield(self._stop_task)

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM, then SIGKILL after KILL_AFTER_SECONDS; drains stdout so exit is seen.

        After a natural end of output (not closed, not stalled) ffmpeg first gets time to exit
        by itself, so its own exit status is kept.
        """
        signals = (process.terminate, process.kill)
        if not self._closed.is_set() and self._failure is None:  # not closed, not stalled
            signals = (None, *signals)
        for signal_process in signals:
            if signal_process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    signal_process()
            try:
                await asyncio.wait_for(self._drain_and_wait(process), KILL_AFTER_SECONDS)
                return
            except TimeoutError:
                _LOGGER.warning("source %s: ffmpeg pid %d still running", self.name, process.pid)
        _LOGGER.error("source %s: ffmpeg pid %d did not exit", self.name, process.pid)

    async def _drain_and_wait(self, process: asyncio.subprocess.Process) -> None:
        """Read stdout to EOF (a full, paused pipe hides the exit) and wait for the exit."""
        while self._reading:
            await asyncio.sleep(0.01)
        while await process.stdout.read(1 << 16):
            pass
        await process.wait()

    async def close(self) -> None:
        """Stop decoding: ffmpeg is terminated and reaped; chunks() finishes."""
        self._closed.set()
        process = self._process
        if process is not None:
            await self._stop_process(process)


async def _collect_tail(stream: asyncio.StreamReader, tail: bytearray) -> None:
    """Read ``stream`` to EOF keeping its last bytes in ``tail``."""
    while chunk := await stream.read(4096):
        tail.extend(chunk)
        del tail[:-_STDERR_TAIL_BYTES]


async def _finish_task(task: asyncio.Task, timeout_seconds: float = 1.0) -> None:
    """Wait briefly for ``task``, cancelling it if it does not finish."""
    try:
        await asyncio.wait_for(task, timeout_seconds)
    except TimeoutError:
        pass
    except OSError as error:
        _LOGGER.debug("stderr reader failed: %s", error)
