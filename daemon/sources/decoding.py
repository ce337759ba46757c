"""Raw PCM bytes -> mono float32 samples, tolerant of hostile input."""

from __future__ import annotations

import logging
import time

import numpy as np

_LOGGER = logging.getLogger(__name__)

PCM_FORMATS: dict[str, str] = {"s16le": "<i2", "f32le": "<f4"}
"""Supported raw sample formats and their numpy dtypes."""
WARNING_INTERVAL_SECONDS = 10.0


class RateLimitedWarning:
    """Logs one warning per ``interval_seconds`` and counts the ones it suppressed."""

    def __init__(self, logger: logging.Logger,
                 interval_seconds: float = WARNING_INTERVAL_SECONDS) -> None:
        self._logger = logger
        self._interval_seconds = interval_seconds
        self._last_monotonic: float | None = None
        self.suppressed = 0
        """Warnings dropped since the last one logged."""

    def warn(self, message: str, *args: object) -> None:
        """Log ``message % args`` unless one was logged within the interval."""
        now = time.monotonic()
        if self._last_monotonic is not None and now - self._last_monotonic < self._interval_seconds:
            self.suppressed += 1
            return
        if self.suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, self.suppressed)
        self._logger.warning(message, *args)
        self._last_monotonic, self.suppressed = now, 0


class PcmDecoder:
    """Interleaved s16le/f32le bytes -> mono float32; buffers partial frames between calls.

    Non-finite samples become 0 and, when ``clip`` is set, f32 samples beyond [-1, 1] are
    clipped, each with a rate-limited warning; channels are averaged to mono.
    """

    def __init__(self, pcm_format: str, channels: int = 1, clip: bool = True,
                 source_name: str = "") -> None:
        if pcm_format not in PCM_FORMATS:
            raise ValueError(f"unknown PCM format {pcm_format!r} (known: {sorted(PCM_FORMATS)})")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.pcm_format = pcm_format
        self.channels = channels
        self._dtype = np.dtype(PCM_FORMATS[pcm_format])
        self.frame_bytes = self._dtype.itemsize * channels
        """Bytes per interleaved frame (one sample of every channel)."""
        self._clip = clip
        self._source_name = source_name
        self._remainder = b""
        self._nonfinite_warning = RateLimitedWarning(_LOGGER)
        self._clip_warning = RateLimitedWarning(_LOGGER)

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame held for the next call."""
        return len(self._remainder)

    def reset(self) -> None:
        """Drop a buffered partial frame (the producer went away)."""
        self._remainder = b""

    def decode(self, data: bytes) -> np.ndarray:
        """Mono float32 samples of every complete frame in the buffered bytes plus ``data``."""
        buffered = self._remainder + data if self._remainder else bytes(data)
        n_frames = len(buffered) // self.frame_bytes
        n_bytes = n_frames * self.frame_bytes
        self._remainder = buffered[n_bytes:]
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        frames = np.frombuffer(buffered, dtype=self._dtype, count=n_frames * self.channels)
        frames = frames.reshape(n_frames, self.channels)
        if self.pcm_format == "s16le":
            samples = frames.astype(np.float32) * np.float32(1.0 / 32768.0)
        else:
            samples = self._sanitize(frames.astype(np.float32))
        if self.channels == 1:
            return samples[:, 0].copy()
        return samples.mean(axis=1, dtype=np.float32)

    def _sanitize(self, samples: np.ndarray) -> np.ndarray:
        """Replace NaN/inf by 0 and (if clipping) clip to [-1, 1], warning about either."""
        finite = np.isfinite(samples)
        if not finite.all():
            self._nonfinite_warning.warn(
                "source %s: %d NaN/inf PCM samples replaced by 0", self._source_name,
                int(samples.size - finite.sum()))
            samples[~finite] = 0.0
        if self._clip:
            peak = float(np.max(np.abs(samples)))
            if peak > 1.0:
                self._clip_warning.warn(
                    "source %s: f32 PCM samples up to %.3g clipped to [-1, 1]",
                    self._source_name, peak)
                np.clip(samples, -1.0, 1.0, out=samples)
        return samples
