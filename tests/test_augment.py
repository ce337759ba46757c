"""Listening-channel augmentation: each stage does what it says, on real signals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from models.outcome import rms_dbfs, split_outputs
from training.augment import (
    Channel,
    add_noise,
    apply_channel,
    band_limit,
    codec_round_trip,
    compress,
    random_channel,
    tilt,
)

RATE_HZ = 44100


def _tone(freq_hz: float, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return (level * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _band_level_db(samples: np.ndarray, freq_hz: float) -> float:
    freqs, power = scipy.signal.welch(samples, RATE_HZ, nperseg=4096)
    return 10 * np.log10(power[np.argmin(abs(freqs - freq_hz))] + 1e-20)


def test_low_pass_removes_the_top_and_keeps_the_bottom():
    mix = _tone(500) + _tone(10000)
    out = band_limit(mix, RATE_HZ, lowpass_hz=4000, highpass_hz=None)
    assert _band_level_db(out, 500) == pytest.approx(_band_level_db(mix, 500), abs=1)
    assert _band_level_db(out, 10000) < _band_level_db(mix, 10000) - 40


def test_tilt_and_compression_and_noise():
    mix = _tone(100) + _tone(8000)
    tilted = tilt(mix, RATE_HZ, tilt_db=6.0)
    assert _band_level_db(tilted, 8000) - _band_level_db(tilted, 100) == pytest.approx(6, abs=1)
    loud_quiet = np.concatenate([_tone(440, level=0.9), _tone(440, level=0.05)])
    squeezed = compress(loud_quiet, RATE_HZ, ratio=8.0)
    before = rms_dbfs(loud_quiet[:RATE_HZ]) - rms_dbfs(loud_quiet[RATE_HZ:])
    after = rms_dbfs(squeezed[:RATE_HZ]) - rms_dbfs(squeezed[RATE_HZ:])
    assert after < before - 6
    noisy = add_noise(_tone(440), snr_db=20.0, rng=np.random.default_rng(0))
    noise_db = rms_dbfs(noisy - _tone(440))
    assert rms_dbfs(_tone(440)) - noise_db == pytest.approx(20, abs=0.5)


@pytest.mark.parametrize("encoder", ["libmp3lame", "libopus"])
def test_codec_round_trip_is_real_and_keeps_length(encoder):
    tone = _tone(1000, seconds=2.0)
    out = codec_round_trip(tone, RATE_HZ, encoder, 64)
    assert out.shape == tone.shape and out.dtype == np.float32
    assert not np.array_equal(out, tone)
    assert _band_level_db(out, 1000) == pytest.approx(_band_level_db(tone, 1000), abs=3)


def test_apply_channel_gain_and_clip_and_random_channels_vary():
    channel = Channel(gain_db=12.0, compression_ratio=None, tilt_db=None, lowpass_hz=None,
                      highpass_hz=None, codec=None, snr_db=None)
    out = apply_channel(_tone(440, level=0.5), RATE_HZ, channel, np.random.default_rng(0))
    assert np.max(np.abs(out)) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    described = {random_channel(rng).describe() for _ in range(20)}
    assert len(described) == 20 and any("lp" in d for d in described)


def test_split_outputs_renormalises_genres_and_returns_no_music():
    genres, no_music = split_outputs(np.array([[0.2, 0.2, 0.6], [0.5, 0.5, 0.0]]), 2)
    assert genres.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert no_music.tolist() == pytest.approx([0.6, 0.0])
    same, none = split_outputs(np.array([[0.3, 0.7]]), 2)
    assert same[0].tolist() == pytest.approx([0.3, 0.7]) and none.tolist() == [0.0]
    with pytest.raises(ValueError, match="4 outputs for 2 labels"):
        split_outputs(np.zeros((1, 4)), 2)


def test_quiet_version_is_10_to_35_db_down_and_sometimes_fades_in():
    from training.augment import quiet_version

    rate_hz = 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(20 * rate_hz) / rate_hz)).astype(np.float32)
    faded = 0
    for seed in range(8):
        out = quiet_version(tone, rate_hz, np.random.default_rng(seed))
        tail_db = 20 * np.log10(np.abs(out[-rate_hz:]).max() / 0.5)
        assert -35.1 <= tail_db <= -9.9 and out.dtype == np.float32
        head_db = 20 * np.log10(np.abs(out[:rate_hz // 10]).max() / 0.5)
        faded += head_db < tail_db - 20
    assert 0 < faded < 8


def test_narrow_band_version_removes_what_is_above_4_khz():
    from training.augment import narrow_band_version

    rate_hz = 44100
    t = np.arange(2 * rate_hz) / rate_hz
    mix = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 9000 * t)).astype(
        np.float32)
    out = narrow_band_version(mix, rate_hz, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(out[rate_hz // 2:]))
    freqs = np.fft.rfftfreq(out[rate_hz // 2:].size, 1 / rate_hz)
    at = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (1000, 9000)}
    assert at[9000] < 1e-3 * at[1000] and out.dtype == np.float32
