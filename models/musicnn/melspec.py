"""musicnn front-end in numpy/scipy: 16 kHz mono audio -> log-mel -> 3-s patches.

Reproduces what the ``musicnn`` package (0.1.0) feeds its networks, without librosa:

1. ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)``:
   centred STFT (the signal is padded by ``n_fft // 2`` on both sides), periodic Hann window,
   power spectrum (``|X|**2``), Slaney mel filterbank (``htk=False``, ``norm='slaney'``,
   0..8000 Hz);
2. ``log10(10000 * mel + 1)``, computed in float32 (the package casts the mel spectrogram to
   float16 first, which overflows to inf for mel power above ~6.55; we deliberately do not);
3. non-overlapping patches of 187 frames (3 s), dropping the incomplete tail, exactly like
   ``musicnn.extractor.batch_data`` with ``input_overlap=False``.

Padding: the networks were trained (2019) with librosa's then-default ``pad_mode='reflect'``;
librosa >= 0.10 pads with zeros (``'constant'``). Only the first and last frame differ.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SAMPLE_RATE_HZ = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187
"""3 s of frames: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``."""


def hz_to_mel(freqs: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa with htk=False."""
    freqs = np.asarray(freqs, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = freqs / f_sp
    above = freqs >= min_log_hz
    safe = np.where(above, freqs, min_log_hz)
    return np.where(above, min_log_mel + np.log(safe / min_log_hz) / logstep, mels)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    freqs = f_sp * mels
    above = mels >= min_log_mel
    return np.where(above, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def mel_filterbank(sample_rate_hz: int = SAMPLE_RATE_HZ, n_fft: int = N_FFT,
                   n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_mels, n_fft // 2 + 1), float32."""
    fft_freqs = np.linspace(0.0, sample_rate_hz / 2, n_fft // 2 + 1)
    mel_edges = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2.0), n_mels + 2)
    hz_edges = mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.astype(np.float32)


def power_spectrogram(samples: np.ndarray, pad_mode: str = "reflect") -> np.ndarray:
    """Centred STFT power, shape (frames, n_fft // 2 + 1), frames = 1 + len // hop."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    half = N_FFT // 2
    if pad_mode == "reflect" and samples.size <= half:
        pad_mode = "constant"
    padded = np.pad(samples, half, mode=pad_mode)
    n_frames = 1 + (padded.size - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, N_FFT),
        strides=(padded.strides[0] * HOP_LENGTH, padded.strides[0]), writeable=False)
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)


def log_mel(samples: np.ndarray, pad_mode: str = "reflect") -> np.ndarray:
    """16 kHz mono samples -> log10(10000 * mel + 1), shape (frames, 96), float32."""
    mel = power_spectrogram(samples, pad_mode) @ _FILTERBANK.T
    return np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)


def cut_patches(spec: np.ndarray, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut (frames, 96) into (N, 187, 96) patches every ``hop_frames`` (the musicnn
    package's patches); N may be 0."""
    starts = range(0, spec.shape[0] - PATCH_FRAMES + 1, hop_frames)
    if len(starts) == 0:
        return np.zeros((0, PATCH_FRAMES, spec.shape[1]), dtype=np.float32)
    return np.stack([spec[s:s + PATCH_FRAMES] for s in starts]).astype(np.float32)


def patches_from_log_mel(spec: np.ndarray, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut (frames, 96) into (N, 187, 96) patches every ``hop_frames``, quiet ones lifted."""
    return lift_quiet(cut_patches(spec, hop_frames))


QUIET_REFERENCE_MEL = 0.0209
"""Mean mel power of a patch below which it is lifted: the 5th percentile of gtzan-mini's
music patches at their own level (the median is 0.26), i.e. about 11 dB below typical music."""
QUIET_MAX_GAIN_DB = 30.0
"""The most a patch is lifted (so a -90 dBFS floor stays far below music)."""


def lift_quiet(patches: np.ndarray) -> np.ndarray:
    """(N, 187, 96) log-mel patches, each quieter than QUIET_REFERENCE_MEL raised towards it
    (at most QUIET_MAX_GAIN_DB); louder patches are returned bit for bit.

    ``log10(10000 mel + 1)`` is level-dependent, so the network hears quiet music (a solo
    piano at -45 dBFS, a fade-in) as near-silence and calls it no music. A per-patch gain
    in the mel power domain puts such patches at the level of quiet music it was trained
    on; digital silence stays silence (0 x gain).
    """
    exponent = np.minimum(patches.astype(np.float64), 300.0)  # no overflow on odd input
    mel = (np.power(10.0, exponent) - 1.0) / 10000.0
    level = mel.mean(axis=(1, 2))
    quiet = level < QUIET_REFERENCE_MEL
    if not quiet.any():
        return patches
    gain = np.minimum(QUIET_REFERENCE_MEL / np.maximum(level[quiet], 1e-30),
                      10.0 ** (QUIET_MAX_GAIN_DB / 10.0))
    lifted = patches.copy()
    lifted[quiet] = np.log10(10000.0 * mel[quiet] * gain[:, None, None] + 1.0)
    return lifted


def musicnn_patches(samples_16k: np.ndarray, hop_frames: int = PATCH_FRAMES,
                    pad_mode: str = "reflect") -> np.ndarray:
    """16 kHz mono float audio -> (N, 187, 96) float32 log-mel patches for the network."""
    return patches_from_log_mel(log_mel(samples_16k, pad_mode), hop_frames)


_FILTERBANK = mel_filterbank()
