"""Decode any file or URL that ffmpeg reads into mono float32 at the contract sample rate."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

from models.errors import GenredError
from models.resample import SAMPLE_RATE_HZ, resample

_LOGGER = logging.getLogger(__name__)

DECODE_TIMEOUT_SECONDS = 600.0
NETWORK_TIMEOUT_SECONDS = 10.0
"""A network read that gets nothing for this long fails (ffmpeg/ffprobe -rw_timeout)."""
NETWORK_STALL_SECONDS = NETWORK_TIMEOUT_SECONDS + 2.0
"""ffmpeg/ffprobe reading a network URL that gives no output for this long is stopped: the
watchdog for schemes whose reads -rw_timeout does not bound (rtsp, udp)."""
NO_AUDIO_STREAM = "no audio stream (a video-only or data file?)"
_STDERR_TAIL_CHARS = 400


class AudioDecodeError(GenredError):
    """Raised when a file or URL cannot be decoded into audio."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"cannot decode audio from {source}: {reason}")
        self.source = source
        self.reason = reason


def ffmpeg_binary(name: str = "ffmpeg") -> str:
    """Absolute path of ffmpeg/ffprobe, or a clear error telling how to install it."""
    found = shutil.which(name)
    if found is None:
        raise AudioDecodeError(name, f"{name} not found on PATH (Debian: apt-get install ffmpeg)")
    return found


def is_network_source(source: str) -> bool:
    """True for a URL read over a network (any scheme but file://)."""
    return "://" in source and not source.lower().startswith("file://")


def stall_timeout_seconds(source: str, local_seconds: float) -> float:
    """How long ffmpeg/ffprobe may give no output for ``source`` before it is stopped."""
    return NETWORK_STALL_SECONDS if is_network_source(source) else local_seconds


def network_input_args(source: str) -> tuple[str, ...]:
    """ffmpeg/ffprobe input options bounding a network read's silence (none for files)."""
    if not is_network_source(source):
        return ()
    return ("-rw_timeout", str(int(NETWORK_TIMEOUT_SECONDS * 1_000_000)))


def explain_ffmpeg_error(stderr_tail: str) -> str:
    """The line of ffmpeg's stderr that says what went wrong (plain words where known)."""
    if "matches no streams" in stderr_tail:
        return NO_AUDIO_STREAM
    lines = stderr_tail.strip().splitlines()
    return lines[-1] if lines else ""


def probe_sample_rate_hz(source: str) -> int:
    """Sample rate of the first audio stream of ``source`` (via ffprobe)."""
    command = [
        ffmpeg_binary("ffprobe"), "-v", "error", *network_input_args(source),
        "-select_streams", "a:0", "-show_entries", "stream=sample_rate", "-of", "json", source,
    ]
    result = _run(command, source, stall_timeout_seconds(source, DECODE_TIMEOUT_SECONDS))
    try:
        streams = json.loads(result.stdout.decode("utf-8", "replace")).get("streams", [])
        return int(streams[0]["sample_rate"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise AudioDecodeError(source, NO_AUDIO_STREAM) from None


def ffmpeg_decode_command(
    source: str,
    sample_rate_hz: int | None = None,
    extra_input_args: tuple[str, ...] = (),
) -> list[str]:
    """ffmpeg arguments decoding ``source`` to mono f32le PCM on stdout."""
    command = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if "-rw_timeout" not in extra_input_args:
        extra_input_args = (*network_input_args(source), *extra_input_args)
    command += [*extra_input_args, "-i", source, "-map", "0:a:0", "-vn", "-ac", "1"]
    if sample_rate_hz is not None:
        command += ["-ar", str(sample_rate_hz)]
    return command + ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]


def _run(command: list[str], source: str,
         timeout_seconds: float = DECODE_TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
    """Run an ffmpeg tool; any failure becomes AudioDecodeError naming ``source``."""
    try:
        result = subprocess.run(
            command, capture_output=True, timeout=timeout_seconds, check=False
        )
    except subprocess.TimeoutExpired:
        raise AudioDecodeError(source, f"timed out after {timeout_seconds:.0f} s") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL_CHARS:]
        if "matches no streams" in message:
            message = NO_AUDIO_STREAM
        raise AudioDecodeError(source, message or f"exit status {result.returncode}")
    return result


def load_audio(source: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Decode ``source`` (path or URL) to mono float32 at ``sample_rate_hz``.

    ffmpeg decodes at the file's own rate; the resampling to the contract rate is the
    front-end's polyphase resampler, the same one the daemon uses.
    """
    source = str(source)
    if "://" not in source and not Path(source).is_file():
        raise AudioDecodeError(source, "no such file")
    native_rate_hz = probe_sample_rate_hz(source)
    result = _run(ffmpeg_decode_command(source), source)
    samples = np.frombuffer(result.stdout, dtype="<f4")
    if samples.size == 0:
        raise AudioDecodeError(source, "no audio samples decoded (empty or non-audio input)")
    if not np.all(np.isfinite(samples)):
        raise AudioDecodeError(source, "decoded samples contain NaN or infinity")
    _LOGGER.debug("decoded %s: %d samples at %d Hz", source, samples.size, native_rate_hz)
    return resample(samples, native_rate_hz, sample_rate_hz)

