"""Helpers for daemon tests: audio files, a WebSocket reader (the fake model: daemon.harness)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import scipy.io.wavfile


def write_tone_wav(path: Path, frequency_hz: float, seconds: float, rate_hz: int = 22050,
                   amplitude: float = 0.3) -> Path:
    """A sine tone WAV with a little noise so it is not perfectly stationary."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    rng = np.random.default_rng(int(frequency_hz))
    x = amplitude * np.sin(2 * np.pi * frequency_hz * t) + 0.01 * rng.standard_normal(t.size)
    scipy.io.wavfile.write(path, rate_hz, (x * 32767).astype(np.int16))
    return path


async def read_until(ws, predicate, timeout_seconds: float) -> list[dict]:
    """Read JSON messages until one satisfies ``predicate``; returns all read."""
    messages: list[dict] = []

    async def loop() -> None:
        while True:
            message = json.loads(await ws.recv())
            messages.append(message)
            if predicate(message):
                return

    await asyncio.wait_for(loop(), timeout_seconds)
    return messages


def write_two_tones_wav(path: Path, frequencies_hz: tuple[float, float], seconds_each: float,
                        rate_hz: int = 22050) -> Path:
    """One tone, then another (each ``seconds_each`` long), as one WAV file."""
    first = write_tone_wav(path.with_suffix(".a.wav"), frequencies_hz[0], seconds_each, rate_hz)
    second = write_tone_wav(path.with_suffix(".b.wav"), frequencies_hz[1], seconds_each, rate_hz)
    samples = np.concatenate([scipy.io.wavfile.read(f)[1] for f in (first, second)])
    scipy.io.wavfile.write(path, rate_hz, samples)
    return path
