"""The musicnn-mel front-end's contract parameters (no Keras needed)."""

from __future__ import annotations

from models.bfft import DEFAULT_PARAMS
from models.musicnn.melspec import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    QUIET_MAX_GAIN_DB,
    QUIET_REFERENCE_MEL,
)
from models.musicnn.melspec import SAMPLE_RATE_HZ as MUSICNN_RATE_HZ
from models.resample import SAMPLE_RATE_HZ

FRONTEND_NAME = "musicnn-mel"
FRONTEND_VERSION = 2
"""2: quiet patches lifted (melspec.lift_quiet)."""
N_PATCHES = 10
"""3-s patches per 30-s window (10 x 187 frames x 256 samples at 16 kHz = 29.9 s)."""

PARAMS: dict = {
    "sample_rate_hz": MUSICNN_RATE_HZ,
    "input_rate_hz": SAMPLE_RATE_HZ,
    "window_samples": DEFAULT_PARAMS.window_samples,
    "bin_samples": DEFAULT_PARAMS.samples_per_bin,
    "resampler": "scipy.signal.resample_poly",
    "n_fft": N_FFT,
    "hop_length": HOP_LENGTH,
    "n_mels": N_MELS,
    "mel_scale": "slaney",
    "log": "log10(10000 * mel + 1), float32",
    "pad_mode": "reflect",
    "quiet_lift": {"reference_mean_mel": QUIET_REFERENCE_MEL, "max_gain_db": QUIET_MAX_GAIN_DB},
    "patch_frames": PATCH_FRAMES,
    "n_patches": N_PATCHES,
}
INPUT_SHAPE = (N_PATCHES, PATCH_FRAMES, N_MELS)
