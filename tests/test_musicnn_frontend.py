"""The musicnn front-end without Keras: mel scale, STFT power, log-mel patches, window patches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.musicnn import melspec
from models.musicnn.features import MusicnnExtractor, window_patches
from models.musicnn.spec import INPUT_SHAPE, PARAMS
from models.resample import resample

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
RATE = melspec.SAMPLE_RATE_HZ


def cosine(bin_index: int, n_samples: int, amplitude: float = 1.0) -> np.ndarray:
    """A cosine exactly on FFT bin ``bin_index`` of a 512-point frame, float32."""
    n = np.arange(n_samples)
    return (amplitude * np.cos(2 * np.pi * bin_index * n / melspec.N_FFT)).astype(np.float32)


@pytest.mark.parametrize(("hz", "mel"), [(0.0, 0.0), (200.0, 3.0), (1000.0, 15.0),
                                         (2000.0, 25.081880), (8000.0, 45.245640)])
def test_slaney_mel_scale_values(hz, mel):
    """Linear (200/3 Hz per mel) below 1 kHz, 27 mel per factor 6.4 above; and back.

    2 kHz: 15 + 27 ln 2 / ln 6.4; 8 kHz: 15 + 27 ln 8 / ln 6.4.
    """
    assert float(melspec.hz_to_mel(hz)) == pytest.approx(mel, abs=1e-5)
    assert float(melspec.mel_to_hz(mel)) == pytest.approx(hz, abs=1e-3)


def test_mel_scale_just_below_and_above_the_break():
    """Continuous at 1 kHz / 15 mel: the logarithmic part starts exactly there."""
    assert float(melspec.hz_to_mel(999.0)) == pytest.approx(14.985, abs=1e-9)
    assert float(melspec.hz_to_mel(1001.0)) == pytest.approx(15 + 27 * np.log(1.001) /
                                                             np.log(6.4), abs=1e-9)
    assert float(melspec.mel_to_hz(14.985)) == pytest.approx(999.0, abs=1e-9)
    assert float(melspec.mel_to_hz(16.0)) == pytest.approx(
        1000 * np.exp(np.log(6.4) / 27), abs=1e-9)


def test_mel_scale_computes_in_float64():
    """float32 frequencies are converted in float64: the round trip is exact to 1e-12."""
    freqs = np.array([60.0, 999.0, 1234.5, 4321.0, 7999.0], np.float32)
    mels = melspec.hz_to_mel(freqs)
    assert mels.dtype == np.float64
    np.testing.assert_allclose(melspec.mel_to_hz(mels.astype(np.float32)),
                               melspec.mel_to_hz(mels.astype(np.float32).astype(np.float64)),
                               rtol=1e-12)
    np.testing.assert_allclose(melspec.mel_to_hz(mels), freqs.astype(np.float64), rtol=1e-12)


def test_mel_filterbank_matches_librosa():
    """96 x 257 Slaney-normalised triangles, float32; librosa 0.11's values."""
    bank = melspec.mel_filterbank()
    assert bank.shape == (96, 257) and bank.dtype == np.float32
    assert bank[0, 1] == pytest.approx(0.031999223, rel=1e-5)
    np.testing.assert_allclose(bank[50, 57:61], [0.002688378, 0.011907576, 0.013077741,
                                                 0.004149506], rtol=1e-5)
    assert np.flatnonzero(bank[95]).tolist() == list(range(241, 256))
    assert np.flatnonzero(bank[0]).tolist() == [1]  # 0..62.5 Hz: only bin 1 (31.25 Hz)
    np.testing.assert_allclose(bank.sum(axis=1) * 8000.0 / 256, 1.0, atol=0.08)


def test_mel_filterbank_of_other_sizes():
    """The filterbank follows its arguments: rate, FFT length and band count."""
    bank = melspec.mel_filterbank(8000, 256, 40)
    assert bank.shape == (40, 129)
    np.testing.assert_allclose(bank.sum(axis=1) * 4000.0 / 128, 1.0, atol=0.2)
    assert np.flatnonzero(bank[39]).max() < 128


def test_power_of_a_cosine_on_a_bin_with_a_periodic_hann_window():
    """|X|^2 of a unit cosine on bin 64: (512/4)^2 there, (512/8)^2 beside it, 0 elsewhere."""
    power = melspec.power_spectrogram(cosine(64, 8192))
    assert power.shape == (1 + 8192 // 256, 257) and power.dtype == np.float32
    middle = power[10]
    assert middle[64] == pytest.approx(128.0**2, rel=1e-4)
    assert middle[63] == pytest.approx(64.0**2, rel=1e-4)
    assert middle[65] == pytest.approx(64.0**2, rel=1e-4)
    others = np.delete(middle, [63, 64, 65])
    assert others.max() < 1e-3


def test_power_of_float64_or_column_input_is_that_of_float32_mono():
    """Samples are taken as float32 and flattened: float64 or (n, 1) input changes nothing."""
    samples = np.random.default_rng(4).normal(0, 0.1, 4000).astype(np.float32)
    expected = melspec.power_spectrogram(samples)
    np.testing.assert_array_equal(melspec.power_spectrogram(samples.astype(np.float64)),
                                  expected)
    np.testing.assert_array_equal(melspec.power_spectrogram(samples.reshape(-1, 1)), expected)
    np.testing.assert_array_equal(melspec.power_spectrogram(samples.reshape(1, -1)), expected)


def test_power_scales_with_the_square_of_the_amplitude():
    """Half the amplitude: a quarter of the power."""
    full = melspec.power_spectrogram(cosine(32, 4096))
    half = melspec.power_spectrogram(cosine(32, 4096, 0.5))
    np.testing.assert_allclose(half[5:10], full[5:10] / 4, rtol=1e-4, atol=1e-6)


def test_frames_are_centred_one_per_hop():
    """1 + len // 256 frames; frame i is centred on sample 256 i (zeros before the start)."""
    samples = np.zeros(2048, np.float32)
    samples[1024] = 1.0  # an impulse at the centre of frame 4
    power = melspec.power_spectrogram(samples, pad_mode="constant")
    assert power.shape == (9, 257)
    assert int(np.argmax(power.sum(axis=1))) == 4
    np.testing.assert_allclose(power[4], 1.0, rtol=1e-5)  # Hann's centre weight is 1
    assert melspec.power_spectrogram(np.zeros(255, np.float32)).shape == (1, 257)
    assert melspec.power_spectrogram(np.zeros(256, np.float32)).shape == (2, 257)


def test_reflect_padding_changes_only_the_edge_frames():
    """reflect (the trained padding) vs constant: the first and last frames differ only."""
    samples = np.random.default_rng(1).normal(0, 0.1, 4000).astype(np.float32)
    reflect = melspec.power_spectrogram(samples)
    constant = melspec.power_spectrogram(samples, pad_mode="constant")
    assert not np.allclose(reflect[0], constant[0]) and not np.allclose(reflect[-1],
                                                                         constant[-1])
    np.testing.assert_array_equal(reflect[1:-1], constant[1:-1])


@pytest.mark.parametrize(("n_samples", "same"), [(200, True), (256, True), (257, False)])
def test_too_short_to_reflect_is_zero_padded(n_samples, same):
    """Up to n_fft / 2 samples cannot be reflected: zeros pad them; one more reflects."""
    samples = np.random.default_rng(2).normal(0, 0.1, n_samples).astype(np.float32)
    reflect = melspec.power_spectrogram(samples)
    constant = melspec.power_spectrogram(samples, pad_mode="constant")
    assert np.array_equal(reflect, constant) == same


def test_log_mel_is_log10_of_10000_mel_plus_1():
    """Silence is 0 everywhere; a cosine's log-mel is the formula over the filterbank."""
    assert np.array_equal(melspec.log_mel(np.zeros(4096, np.float32)), np.zeros((17, 96)))
    samples = cosine(64, 4096, 0.01)  # 2 kHz
    spec = melspec.log_mel(samples)
    assert spec.shape == (17, 96) and spec.dtype == np.float32
    mel = melspec.power_spectrogram(samples).astype(np.float64) @ \
        melspec.mel_filterbank().astype(np.float64).T
    np.testing.assert_allclose(spec, np.log10(10000 * mel + 1), rtol=0, atol=5e-6)
    assert int(np.argmax(spec[8])) == 53  # the band centred at 2015 Hz
    assert melspec.log_mel(samples, pad_mode="constant")[0].max() != spec[0].max()


def test_patches_cut_every_hop():
    """187-frame patches every hop_frames; the incomplete tail is dropped; none if short."""
    spec = np.arange(400 * 3, dtype=np.float64).reshape(400, 3)
    patches = melspec.patches_from_log_mel(spec)
    assert patches.shape == (2, 187, 3) and patches.dtype == np.float32
    np.testing.assert_array_equal(patches[1], spec[187:374])
    overlapping = melspec.patches_from_log_mel(spec, hop_frames=100)
    assert overlapping.shape == (3, 187, 3)
    np.testing.assert_array_equal(overlapping[2], spec[200:387])
    assert melspec.patches_from_log_mel(spec[:187]).shape == (1, 187, 3)
    empty = melspec.patches_from_log_mel(spec[:186])
    assert empty.shape == (0, 187, 3) and empty.dtype == np.float32


def test_musicnn_patches_of_30_seconds():
    """30 s -> 1876 frames -> ten patches (or 19 at a half-patch hop); < 3 s -> none."""
    samples = np.random.default_rng(0).normal(0, 0.1, 30 * RATE).astype(np.float32)
    spec = melspec.log_mel(samples)
    patches = melspec.musicnn_patches(samples)
    assert spec.shape == (1876, 96) and patches.shape == (10, 187, 96)
    np.testing.assert_array_equal(patches[3], spec[561:748])
    assert melspec.musicnn_patches(samples, hop_frames=93).shape == (19, 187, 96)
    assert melspec.musicnn_patches(samples[:47000]).shape == (0, 187, 96)
    constant = melspec.musicnn_patches(samples, pad_mode="constant")
    assert not np.array_equal(constant[0, 0], patches[0, 0])
    np.testing.assert_array_equal(constant[0, 1:], patches[0, 1:])


def decode_16k(path: Path, seconds: float) -> np.ndarray:
    """ffmpeg decode to 16 kHz mono float32, as tools/musicnn/reference.py does."""
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path),
                          "-t", str(seconds), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def test_patches_match_the_original_package(shared_data, ffmpeg):
    """The band means of a GTZAN clip's patches equal the musicnn package's (librosa) before
    the quiet lift, and after it wherever a patch is not quiet."""
    reference = np.load(REFERENCE)
    clip = shared_data / str(reference["clip"])
    if not clip.is_file():
        pytest.skip(f"{clip} is not present")
    spec = melspec.log_mel(decode_16k(clip, float(reference["seconds"])), pad_mode="constant")
    np.testing.assert_allclose(melspec.cut_patches(spec).mean(axis=1), reference["band_means"],
                               atol=1e-4)
    levels = ((10.0 ** melspec.cut_patches(spec).astype(np.float64) - 1) / 1e4).mean(axis=(1, 2))
    lifted = melspec.patches_from_log_mel(spec)
    lifted_levels = ((10.0 ** lifted.astype(np.float64) - 1) / 1e4).mean(axis=(1, 2))
    quiet = levels < melspec.QUIET_REFERENCE_MEL
    np.testing.assert_allclose(lifted[~quiet].mean(axis=1), reference["band_means"][~quiet],
                               atol=1e-4)
    np.testing.assert_allclose(lifted_levels[quiet], melspec.QUIET_REFERENCE_MEL, rtol=1e-3)
    assert quiet.any()  # this clip's quiet opening seconds exercise the lift


@pytest.fixture(scope="module")
def window_audio() -> np.ndarray:
    """31 s of 44.1 kHz noise: longer than one window."""
    return np.random.default_rng(3).normal(0, 0.1, 31 * 44100).astype(np.float32)


def test_window_patches_are_the_resampled_window_s_patches(window_audio):
    """A full window: resampled to 16 kHz as is (no padding), its first ten patches."""
    window = window_audio[:PARAMS["window_samples"]]
    expected = melspec.musicnn_patches(resample(window, 44100, 16000))[:10]
    np.testing.assert_array_equal(window_patches(window), expected)


def test_window_patches_cut_a_long_window(window_audio):
    """Audio beyond window_samples is ignored; ten float32 patches of (187, 96)."""
    patches = window_patches(window_audio)
    assert patches.shape == INPUT_SHAPE and patches.dtype == np.float32
    np.testing.assert_array_equal(patches, window_patches(window_audio[:PARAMS["window_samples"]]))
    assert np.abs(patches).sum() > 0 and (patches[-1] != 0).any()


def test_window_patches_zero_pad_a_short_window(window_audio):
    """A 10-s window is padded with silence to the window's length before the patches."""
    short = window_audio[:10 * 44100]
    padded = np.concatenate([short, np.zeros(PARAMS["window_samples"] - short.size,
                                             np.float32)])
    patches = window_patches(short)
    np.testing.assert_array_equal(patches, window_patches(padded))
    assert patches.shape == INPUT_SHAPE and (patches[-1] == 0).all()
    assert (patches[0] != 0).any()


def test_window_patches_fill_missing_patches_with_zeros(window_audio):
    """A window shorter than n_patches patches: the missing ones are zero, float32."""
    params = {**PARAMS, "window_samples": 4 * 44100}  # one 3-s patch
    patches = window_patches(window_audio, params)
    assert patches.shape == INPUT_SHAPE and patches.dtype == np.float32
    assert (patches[0] != 0).any() and (patches[1:] == 0).all()
    nine = window_patches(window_audio, {**PARAMS, "window_samples": 28 * 44100})
    assert nine.shape == INPUT_SHAPE and (nine[8] != 0).any() and (nine[9] == 0).all()
    fewer = window_patches(window_audio, {**params, "n_patches": 1})
    assert fewer.shape == (1, 187, 96)
    np.testing.assert_array_equal(fewer[0], patches[0])


def test_window_patches_follow_the_pad_mode(window_audio):
    """The contract's pad_mode reaches the log-mel: constant differs in the first frame."""
    reflect = window_patches(window_audio)
    constant = window_patches(window_audio, {**PARAMS, "pad_mode": "constant"})
    assert not np.array_equal(reflect[0, 0], constant[0, 0])
    np.testing.assert_array_equal(reflect[0, 1:], constant[0, 1:])


def test_extractor_computes_the_window_s_patches(window_audio):
    """features() and offline() give window_patches of the window; push does nothing."""
    extractor = MusicnnExtractor(dict(PARAMS))
    assert extractor.window_samples == PARAMS["window_samples"]
    assert extractor.bin_samples == PARAMS["bin_samples"]
    assert extractor.push(window_audio[:100]) is None
    expected = window_patches(window_audio)
    np.testing.assert_array_equal(extractor.features(lambda: window_audio), expected)
    np.testing.assert_array_equal(extractor.offline(window_audio), expected)
    short = MusicnnExtractor({**PARAMS, "window_samples": 4 * 44100})
    np.testing.assert_array_equal(short.offline(window_audio)[1:], 0.0)
    np.testing.assert_array_equal(short.features(lambda: window_audio)[1:], 0.0)
