"""Decode a file or URL through an ffmpeg pipe in bounded chunks (memory does not grow with
the file's length); the samples equal :func:`models.audio.load_audio`'s within float rounding.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.audio import (
    NO_AUDIO_STREAM,
    AudioDecodeError,
    _run,
    ffmpeg_binary,
    ffmpeg_decode_command,
    network_input_args,
    stall_timeout_seconds,
)
from models.resample import SAMPLE_RATE_HZ, StreamingResampler

_LOGGER = logging.getLogger(__name__)

CHUNK_SECONDS = 5.0
"""Audio decoded per read from the pipe (at the file's own rate)."""
STALL_TIMEOUT_SECONDS = 120.0
"""ffmpeg decoding a local file is stopped when its pipe yields no byte for this long (a hung
decoder); a network URL's limit is models.audio.NETWORK_STALL_SECONDS (a dead stream)."""
_BYTES_PER_SAMPLE = 4
_STDERR_TAIL_CHARS = 400


@dataclass(frozen=True)
class StreamInfo:
    """What ffprobe tells about a source before decoding it."""

    sample_rate_hz: int
    """Rate of the first audio stream."""
    duration_seconds: float | None
    """Duration, or None when the container does not say (live streams, some URLs)."""


def probe_stream(source: str) -> StreamInfo:
    """Sample rate and duration (None when unknown) of ``source``'s first audio stream."""
    command = [ffmpeg_binary("ffprobe"), "-v", "error", *network_input_args(source),
               "-select_streams", "a:0",
               "-show_entries", "stream=sample_rate,duration:format=duration", "-of", "json",
               source]
    probe_seconds = stall_timeout_seconds(source, STALL_TIMEOUT_SECONDS)
    answer = _run(command, source, probe_seconds).stdout.decode("utf-8", "replace")
    found = json.loads(answer or "{}")
    try:
        stream = found.get("streams", [])[0]
        rate_hz = int(stream["sample_rate"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise AudioDecodeError(source, NO_AUDIO_STREAM) from None
    duration = None
    for text in (stream.get("duration"), found.get("format", {}).get("duration")):
        try:
            duration = float(text)
            break
        except (TypeError, ValueError):
            continue
    return StreamInfo(rate_hz, duration)


def decode_chunks(source: str | Path, info: StreamInfo | None = None,
                  sample_rate_hz: int = SAMPLE_RATE_HZ,
                  chunk_seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 chunks of ``source`` at ``sample_rate_hz``, decoded as the caller reads.

    ffmpeg decodes at the file's own rate and the contract's resampler runs streamed
    (:class:`StreamingResampler`, equal to the offline one), as :func:`load_audio` does.
    """
    source = str(source)
    if "://" not in source and not Path(source).is_file():
        raise AudioDecodeError(source, "no such file")
    info = info or probe_stream(source)
    resampler = StreamingResampler(info.sample_rate_hz, sample_rate_hz)
    read_bytes = max(1, round(chunk_seconds * info.sample_rate_hz)) * _BYTES_PER_SAMPLE
    n_decoded = 0
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(ffmpeg_decode_command(source), stdout=subprocess.PIPE,
                                   stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            for raw in _read_pipe(process, read_bytes, source):
                samples = np.frombuffer(raw, dtype="<f4")
                if not np.all(np.isfinite(samples)):
                    raise AudioDecodeError(source, "decoded samples contain NaN or infinity")
                n_decoded += samples.size
                yield resampler.process(samples)
            _check_exit(process, stderr, source)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
    if n_decoded == 0:
        raise AudioDecodeError(source, "no audio samples decoded (empty or non-audio input)")
    _LOGGER.debug("decoded %s: %d samples at %d Hz", source, n_decoded, info.sample_rate_hz)
    yield resampler.flush()


def _read_pipe(process: subprocess.Popen, read_bytes: int, source: str) -> Iterator[bytes]:
    """Whole-sample blocks of about ``read_bytes`` from ffmpeg's stdout until it closes."""
    fd = process.stdout.fileno()  # type: ignore[union-attr]
    stall_seconds = stall_timeout_seconds(source, STALL_TIMEOUT_SECONDS)
    pending = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if not selector.select(stall_seconds):
                raise AudioDecodeError(source, f"no answer for {stall_seconds:.0f} s")
            data = os.read(fd, read_bytes - len(pending))
            if not data:
                break
            pending += data
            if len(pending) >= read_bytes:
                yield bytes(pending)
                pending = bytearray()
    whole = len(pending) - len(pending) % _BYTES_PER_SAMPLE
    if whole:
        yield bytes(pending[:whole])


def _check_exit(process: subprocess.Popen, stderr, source: str) -> None:
    """AudioDecodeError with ffmpeg's message when it exited with an error."""
    try:
        code = process.wait(timeout=STALL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise AudioDecodeError(source, "ffmpeg did not exit after its output ended") from None
    if code != 0:
        stderr.seek(0)
        message = stderr.read().decode("utf-8", "replace").strip()[-_STDERR_TAIL_CHARS:]
        raise AudioDecodeError(source, message or f"exit status {code}")
