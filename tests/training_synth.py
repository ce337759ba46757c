"""Synthetic 'genres' for the training tests: low drone, hi-hat pulses, harmonic chords."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal

SYNTH_RATE_HZ = 22050
SYNTH_GENRES = ("chords", "drone", "hihat")


def _drone(n: int, rng: np.random.Generator) -> np.ndarray:
    """Low sine drone (50-120 Hz) with a slow swell."""
    t = np.arange(n) / SYNTH_RATE_HZ
    f0 = rng.uniform(50, 120)
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t)
    return swell * (np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(4 * np.pi * f0 * t))


def _hihat(n: int, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise bursts on an eighth-note grid (100-160 BPM)."""
    period = round(SYNTH_RATE_HZ * 60 / rng.uniform(100, 160) / 2)
    envelope = np.exp(-np.arange(period) / (SYNTH_RATE_HZ * rng.uniform(0.02, 0.05)))
    pulses = np.tile(envelope, n // period + 1)[:n]
    sos = scipy.signal.butter(4, rng.uniform(4000, 6000), "highpass", fs=SYNTH_RATE_HZ,
                              output="sos")
    return pulses * scipy.signal.sosfilt(sos, rng.standard_normal(n))


def _chords(n: int, rng: np.random.Generator) -> np.ndarray:
    """Triads of harmonic tones (roots 200-500 Hz), changing every 1.5-2.5 s."""
    out = np.zeros(n)
    step = round(SYNTH_RATE_HZ * rng.uniform(1.5, 2.5))
    t = np.arange(step) / SYNTH_RATE_HZ
    for start in range(0, n, step):
        root = rng.uniform(200, 500)
        chord = sum(np.sin(2 * np.pi * root * ratio * k * t) / k
                    for ratio in (1.0, 1.26, 1.5) for k in range(1, 6))
        piece = chord[: n - start] * np.exp(-t[: n - start] * 0.8)
        out[start:start + piece.size] = piece
    return out


_MAKERS = {"drone": _drone, "hihat": _hihat, "chords": _chords}


def synth_clip(genre: str, seconds: float, seed: int) -> np.ndarray:
    """One mono clip of ``genre`` scaled to 0.5 peak, with faint background noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SYNTH_RATE_HZ)
    signal = _MAKERS[genre](n, rng)
    signal = signal / np.max(np.abs(signal)) * 0.5 + 1e-3 * rng.standard_normal(n)
    return signal.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16-bit PCM WAV at SYNTH_RATE_HZ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(path, SYNTH_RATE_HZ, (np.clip(samples, -1, 1) * 32767).astype("<i2"))
    return path


def write_synth_dataset(folder: Path, clips_per_genre: int, seconds: float = 30.0,
                        seed: int = 0) -> Path:
    """folder/<genre>/<genre>.000NN.wav for each synthetic genre."""
    for g, genre in enumerate(SYNTH_GENRES):
        for i in range(clips_per_genre):
            clip = synth_clip(genre, seconds, seed * 10_000 + g * 1000 + i)
            write_wav(folder / genre / f"{genre}.{i:05d}.wav", clip)
    return folder
