"""Listening-channel augmentation: what line-in, radio and lossy streams do to music.

Each training clip is also seen through random channels: gain (+-12 dB, clipped at full
scale), dynamic-range compression, an EQ tilt, a band limit (low-pass 3.4-8 kHz, sometimes
a high-pass), a real MP3 or Opus round trip through ffmpeg (64-128 kbit/s) and added noise.
All functions take and return mono float32 at ``sample_rate_hz``.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

import numpy as np
import scipy.signal

from models.audio import ffmpeg_binary

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Channel:
    """One random listening channel (None: that stage is off)."""

    gain_db: float
    compression_ratio: float | None
    tilt_db: float | None
    lowpass_hz: float | None
    highpass_hz: float | None
    codec: tuple[str, int] | None
    """(ffmpeg encoder, bit rate in kbit/s)."""
    snr_db: float | None

    def describe(self) -> str:
        """Short text, e.g. 'gain -3.1 dB, lp 4200 Hz, libmp3lame 64k'."""
        parts = [f"gain {self.gain_db:+.1f} dB"]
        if self.compression_ratio:
            parts.append(f"comp {self.compression_ratio:.0f}:1")
        if self.tilt_db:
            parts.append(f"tilt {self.tilt_db:+.1f} dB")
        if self.lowpass_hz:
            parts.append(f"lp {self.lowpass_hz:.0f} Hz")
        if self.highpass_hz:
            parts.append(f"hp {self.highpass_hz:.0f} Hz")
        if self.codec:
            parts.append(f"{self.codec[0]} {self.codec[1]}k")
        if self.snr_db:
            parts.append(f"snr {self.snr_db:.0f} dB")
        return ", ".join(parts)


def random_channel(rng: np.random.Generator) -> Channel:
    """Draw a channel; each stage is on with a fixed probability."""
    def maybe(probability: float, value: float) -> float | None:
        return value if rng.random() < probability else None

    codec = None
    if rng.random() < 0.4:
        codec = (str(rng.choice(["libmp3lame", "libopus"])), int(rng.choice([64, 96, 128])))
    return Channel(
        gain_db=float(rng.uniform(-12.0, 12.0)),
        compression_ratio=maybe(0.4, float(rng.uniform(2.0, 8.0))),
        tilt_db=maybe(0.5, float(rng.uniform(-6.0, 6.0))),
        lowpass_hz=maybe(0.4, float(rng.uniform(3400.0, 8000.0))),
        highpass_hz=maybe(0.2, float(rng.uniform(80.0, 300.0))),
        codec=codec,
        snr_db=maybe(0.3, float(rng.uniform(12.0, 35.0))),
    )


def compress(samples: np.ndarray, sample_rate_hz: int, ratio: float,
             threshold_dbfs: float = -24.0, release_seconds: float = 0.1) -> np.ndarray:
    """Feed-forward RMS compressor with make-up gain back to the input's peak level."""
    alpha = np.exp(-1.0 / (release_seconds * sample_rate_hz))
    power = scipy.signal.lfilter([1 - alpha], [1, -alpha], samples.astype(np.float64) ** 2)
    level_db = 10 * np.log10(np.maximum(power, 1e-12))
    over_db = np.maximum(level_db - threshold_dbfs, 0.0)
    out = samples * 10 ** (-over_db * (1 - 1 / ratio) / 20)
    peak_in, peak_out = np.max(np.abs(samples)), np.max(np.abs(out))
    return (out * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


def tilt(samples: np.ndarray, sample_rate_hz: int, tilt_db: float,
         pivot_hz: float = 1000.0) -> np.ndarray:
    """Tilt EQ: +tilt_db/2 above the pivot and -tilt_db/2 below it (first-order split)."""
    sos_low = scipy.signal.butter(1, pivot_hz, "lowpass", fs=sample_rate_hz, output="sos")
    low = scipy.signal.sosfilt(sos_low, samples)
    high = samples - low
    return (low * 10 ** (-tilt_db / 40) + high * 10 ** (tilt_db / 40)).astype(np.float32)


def band_limit(samples: np.ndarray, sample_rate_hz: int, lowpass_hz: float | None,
               highpass_hz: float | None) -> np.ndarray:
    """8th-order Butterworth low-pass and/or 2nd-order high-pass."""
    out = samples
    if lowpass_hz:
        sos = scipy.signal.butter(8, lowpass_hz, "lowpass", fs=sample_rate_hz, output="sos")
        out = scipy.signal.sosfilt(sos, out)
    if highpass_hz:
        sos = scipy.signal.butter(2, highpass_hz, "highpass", fs=sample_rate_hz, output="sos")
        out = scipy.signal.sosfilt(sos, out)
    return np.asarray(out, dtype=np.float32)


def codec_round_trip(samples: np.ndarray, sample_rate_hz: int, encoder: str,
                     bitrate_kbps: int) -> np.ndarray:
    """Encode with ffmpeg (mp3 or ogg/opus at ``bitrate_kbps``) and decode back."""
    container = "mp3" if encoder == "libmp3lame" else "ogg"
    codec_rate_hz = 48000 if encoder == "libopus" else sample_rate_hz
    ffmpeg = ffmpeg_binary()
    raw = ["-f", "f32le", "-ac", "1", "-ar", str(sample_rate_hz)]
    encoded = subprocess.run(
        [ffmpeg, "-v", "error", *raw, "-i", "pipe:0", "-ar", str(codec_rate_hz), "-c:a", encoder,
         "-b:a", f"{bitrate_kbps}k", "-f", container, "pipe:1"],
        input=samples.astype("<f4").tobytes(), capture_output=True, check=True, timeout=120)
    decoded = subprocess.run(
        [ffmpeg, "-v", "error", "-i", "pipe:0", "-f", "f32le", "-ac", "1", "-ar",
         str(sample_rate_hz), "pipe:1"],
        input=encoded.stdout, capture_output=True, check=True, timeout=120)
    out = np.frombuffer(decoded.stdout, dtype="<f4")
    return _align_length(out, samples.size)


def _align_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Trim or zero-pad to ``n_samples`` (codecs add priming and padding)."""
    out = np.zeros(n_samples, dtype=np.float32)
    out[: min(n_samples, samples.size)] = samples[:n_samples]
    return out


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish noise (white through a one-pole low-pass) at ``snr_db`` below the signal."""
    white = rng.standard_normal(samples.size)
    noise = scipy.signal.lfilter([1.0], [1.0, -0.95], white)
    signal_rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) + 1e-9
    noise *= signal_rms / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-snr_db / 20)
    return (samples + noise).astype(np.float32)


def apply_channel(samples: np.ndarray, sample_rate_hz: int, channel: Channel,
                  rng: np.random.Generator) -> np.ndarray:
    """The clip as heard through ``channel`` (order: EQ, band, compression, codec, noise, gain)."""
    out = np.asarray(samples, dtype=np.float32)
    if channel.tilt_db:
        out = tilt(out, sample_rate_hz, channel.tilt_db)
    if channel.lowpass_hz or channel.highpass_hz:
        out = band_limit(out, sample_rate_hz, channel.lowpass_hz, channel.highpass_hz)
    if channel.compression_ratio:
        out = compress(out, sample_rate_hz, channel.compression_ratio)
    if channel.codec:
        out = codec_round_trip(out, sample_rate_hz, *channel.codec)
    if channel.snr_db:
        out = add_noise(out, channel.snr_db, rng)
    out = out * np.float32(10 ** (channel.gain_db / 20))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


QUIET_GAIN_DB = (-35.0, -10.0)
"""Attenuation range of a quiet view: soft music (solo piano, strings at -45 to -35 dBFS)
and low line-in. (-45..-20 dB took GTZAN music below -65 dBFS, into the non-music
floors, and cost non-music recall: 0.82.)"""
FADE_IN_SECONDS = (3.0, 15.0)


def quiet_version(samples: np.ndarray, sample_rate_hz: int,
                  rng: np.random.Generator) -> np.ndarray:
    """The clip attenuated by 10-35 dB and, half the time, faded in from a further -30 dB."""
    out = np.asarray(samples, dtype=np.float32) * np.float32(
        10 ** (rng.uniform(*QUIET_GAIN_DB) / 20))
    if rng.random() < 0.5:
        fade = int(rng.uniform(*FADE_IN_SECONDS) * sample_rate_hz)
        ramp_db = np.linspace(-30.0, 0.0, min(fade, out.size), dtype=np.float32)
        out[: ramp_db.size] *= 10 ** (ramp_db / 20)
    return out


NARROW_LOWPASS_HZ = 4000.0
PHONE_HIGHPASS_HZ = 300.0


def narrow_band_version(samples: np.ndarray, sample_rate_hz: int,
                        rng: np.random.Generator) -> np.ndarray:
    """The clip band-limited to 4 kHz (an 8-kHz file, AM radio) and, half the time, also
    high-passed at 300 Hz (a phone line)."""
    highpass = PHONE_HIGHPASS_HZ if rng.random() < 0.5 else None
    return band_limit(np.asarray(samples, np.float32), sample_rate_hz, NARROW_LOWPASS_HZ,
                      highpass)
