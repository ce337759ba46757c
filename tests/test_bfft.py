"""BFFT front-end: golden values, colormap, resampling, streaming == offline."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.signal
from PIL import Image

from models.bfft import (
    DEFAULT_PARAMS,
    BfftParams,
    StreamingBfft,
    bfft_image,
    brg_lookup_table,
    columns_to_image,
)
from models.resample import resample

P = DEFAULT_PARAMS
_LEVEL_OF_RGB = {tuple(rgb): level for level, rgb in enumerate(brg_lookup_table())}


def levels(image: np.ndarray) -> np.ndarray:
    """Invert the colormap: image (rows, cols, 3) -> levels 0..255."""
    flat = image.reshape(-1, 3)
    return np.array([_LEVEL_OF_RGB[tuple(p)] for p in flat]).reshape(image.shape[:2])


def sine(frequency_hz: float, amplitude: float, n_samples: int, rate_hz: int = 44100):
    t = np.arange(n_samples) / rate_hz
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def music_like(seconds: float, rate_hz: int, seed: int = 0) -> np.ndarray:
    """Tones + band-limited noise + amplitude pulses, all below 9 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110, 440, 1250, 3300, 7000))
    noise = scipy.signal.lfilter(*scipy.signal.butter(6, 8000 / (rate_hz / 2)),
                                 rng.standard_normal(n))
    pulses = (np.sin(2 * np.pi * 2 * t) > 0.6).astype(float)
    return (x + 0.05 * noise * pulses).astype(np.float32)


def test_lut_unique_and_brg_endpoints():
    table = brg_lookup_table()
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert tuple(table[0]) == (0, 0, 255)          # low = blue
    assert tuple(table[255]) == (0, 255, 0)        # high = green
    assert table[128, 0] >= 250                    # mid = red
    assert len(_LEVEL_OF_RGB) == 256


def test_lut_equals_matplotlib():
    colormaps = pytest.importorskip("matplotlib").colormaps
    expected = colormaps["brg"](np.arange(256), bytes=True)[:, :3]
    np.testing.assert_array_equal(brg_lookup_table(), expected)


def test_params_derived_values():
    assert P.window_samples == 224 * 5906
    assert abs(P.bin_seconds - 0.1339) < 1e-4
    assert abs(P.window_seconds - 30.0) < 0.01
    assert P.row_of_frequency(0) == 223 and P.row_of_frequency(11024) == 0


def test_sine_1khz_lights_its_rows_only():
    image = bfft_image(sine(1000, 0.5, P.window_samples))  # -6 dBFS
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    lv = levels(image)
    row = P.row_of_frequency(1000)  # band 20 of 224 -> row 203
    assert row == 203
    assert lv[row].min() >= 250                       # the peak row: top of the range
    assert np.all(lv[row - 1 : row + 2].max(axis=0) >= 250)
    far_rows = [r for r in range(224) if abs(r - row) > 12]
    assert np.all(lv[far_rows] == 0)                  # far rows at the floor (blue)
    assert np.all(np.isin(lv[:, 5], lv[:, 100]))      # stationary: every column alike


def test_silence_is_floor_colour_not_nan():
    for samples in (np.zeros(P.window_samples, np.float32), np.zeros(10, np.float32)):
        image = bfft_image(samples)
        assert np.all(image == brg_lookup_table()[0])


def test_quiet_noise_is_normalised_like_loud_noise():
    noise = np.random.default_rng(1).standard_normal(P.window_samples).astype(np.float32)
    loud, quiet = bfft_image(0.5 * noise), bfft_image(0.005 * noise)
    assert np.abs(levels(loud).astype(int) - levels(quiet)).max() <= 1


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="mono"):
        bfft_image(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        bfft_image(np.array([0.0, np.nan], np.float32))


def test_22050_and_44100_give_nearly_the_same_image():
    audio_44k = music_like(30.0, 44100)
    audio_22k = resample(audio_44k, 44100, 22050)
    a, b = levels(bfft_image(audio_44k, 44100)), levels(bfft_image(audio_22k, 22050))
    difference = np.abs(a.astype(int) - b)
    assert difference.mean() < 1.5
    # Below 10 kHz the two agree to a few levels; the top rows differ only where the
    # 22050 Hz file's anti-alias filter rolls off towards its 11025 Hz Nyquist limit.
    below_10khz = difference[P.row_of_frequency(10000) :]
    assert below_10khz.mean() < 0.5
    assert np.percentile(below_10khz, 99) <= 4


def test_png_round_trip_is_lossless(tmp_path):
    image = bfft_image(music_like(30.0, 44100))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(buffer)), image)


@pytest.fixture(scope="module")
def long_audio() -> np.ndarray:
    return music_like(34.0, 44100, seed=3)


def _stream(audio: np.ndarray, sizes) -> np.ndarray:
    streaming = StreamingBfft()
    position = 0
    for size in sizes:
        if position >= audio.shape[0]:
            break
        streaming.push(audio[position : position + size])
        position += size
    assert streaming.n_samples_total == audio.shape[0]
    return streaming


@pytest.mark.parametrize("chunk", [1, 7, 1000, 4410, 44100, "random"])
def test_streaming_equals_offline(long_audio, chunk):
    if chunk == "random":
        rng = np.random.default_rng(7)
        sizes = rng.integers(0, 20000, size=long_audio.shape[0]).tolist()
    else:
        sizes = [chunk] * (long_audio.shape[0] // chunk + 1)
    streaming = _stream(long_audio, sizes)
    n_window = P.window_samples
    end = streaming.n_columns_total * P.samples_per_bin
    expected = bfft_image(long_audio[end - n_window : end])
    difference = np.abs(levels(streaming.image()).astype(int) - levels(expected))
    # Columns are the same FFT of the same samples; a batched FFT may round differently in
    # the last bit, which can move a value across a level boundary: at most 1 level.
    assert difference.max() <= 1
    assert (difference > 0).mean() < 0.001


def test_streaming_counts_and_not_ready():
    streaming = StreamingBfft()
    assert streaming.push(np.zeros(P.samples_per_bin * 3 + 5, np.float32)) == 3
    assert streaming.push(np.zeros(P.samples_per_bin - 5, np.float32)) == 1
    assert streaming.n_columns_total == 4 and not streaming.ready
    with pytest.raises(RuntimeError, match="not full"):
        streaming.image()
    assert streaming.push(np.zeros(0, np.float32)) == 0


def test_small_params_work():
    params = BfftParams(n_time_bins=16, samples_per_bin=512, fft_length=1024,
                        n_frequency_rows=32)
    image = bfft_image(sine(2000, 0.5, params.window_samples), params=params)
    assert image.shape == (32, 16, 3)


def test_flat_spectrum_gives_equal_rows_and_the_golden_level():
    """An impulse per time bin (a flat spectrum): every row the same dB, the top colour.

    Rows hold 6 or 7 FFT bins; only a per-row mean (not a sum) keeps a flat spectrum flat. The
    level is golden: a unit impulse at the Hann window's peak gives (2 / sum(window))^2 per bin.
    """
    frames = np.zeros((P.n_time_bins, P.samples_per_bin), np.float32)
    frames[:, P.samples_per_bin // 2] = 1.0  # the Hann window's peak (1.0)
    stream = StreamingBfft(P)
    stream.push(frames.ravel())
    columns = stream.columns_db()
    window_sum = scipy.signal.get_window(P.window_function, P.samples_per_bin).sum()
    expected_db = 20 * np.log10(2 / window_sum)
    assert expected_db == pytest.approx(-63.385, abs=0.001)
    np.testing.assert_allclose(columns, expected_db, rtol=0, atol=0.01)
    assert np.all(levels(stream.image()) == 255)
    np.testing.assert_array_equal(bfft_image(frames.ravel()), stream.image())


def test_white_noise_rows_agree_within_a_tenth_of_a_db():
    """Seeded white noise, power averaged over 40 windows: every row within 0.1 dB of the mean."""
    rng, stream, power = np.random.default_rng(25), StreamingBfft(P), 0.0
    for _ in range(40):
        stream.push(rng.standard_normal(P.window_samples).astype(np.float32) * 0.1)
        power = power + (10.0 ** (stream.columns_db() / 10)).mean(axis=0)
    rows_db = 10 * np.log10(power / 40)
    assert np.max(np.abs(rows_db - rows_db.mean())) < 0.1, np.round(rows_db - rows_db.mean(), 2)


def test_params_dict_and_frequencies_at_and_above_the_top():
    assert P.to_dict()["n_time_bins"] == 224 and P.to_dict()["colormap"] == "brg"
    assert P.row_of_frequency(11025) == 0 and P.row_of_frequency(20000) == 0


def test_golden_levels_of_known_db_columns():
    """dB below the peak -> level (1 - dB/80) * 256, floor at -80 dB: 0, -0.8, -20, -40, -80."""
    columns = np.full((P.n_time_bins, P.n_frequency_rows), -100.0, np.float32)
    columns[0, :5] = [-10.0, -10.8, -30.0, -50.0, -90.0]  # peak -10 dB re full scale
    lv = levels(columns_to_image(columns))
    assert list(lv[::-1][:5, 0]) == [255, 253, 192, 128, 0]  # row 0 = lowest = image bottom
    assert np.all(lv[:, 1:] == 0)


def test_silence_columns_sit_at_the_floor_db():
    stream = StreamingBfft()
    assert stream.n_samples_total == 0
    stream.push(np.zeros(P.samples_per_bin, np.float32))
    np.testing.assert_array_equal(stream.columns_db()[-1], np.full(224, P.floor_db, np.float32))


def test_partial_bins_add_no_column():
    stream = StreamingBfft()
    assert stream.push(np.zeros(100, np.float32)) == 0
    assert stream.push(np.zeros(100, np.float32)) == 0 and stream.n_samples_total == 200


@pytest.mark.parametrize(("fft_length", "message"), [
    (900, None),  # 225 bins: one or two per row
    (895, "fft_length too small for the requested frequency rows"),  # 223 bins
    (896, "fft_length too small: a frequency row would have no FFT bin"),  # 224 bins, a row empty
    (897, "fft_length too small: a frequency row would have no FFT bin"),  # only the top one
])
def test_fft_length_at_one_bin_per_row(fft_length, message):
    params = BfftParams(samples_per_bin=fft_length, fft_length=fft_length)
    if message is None:
        StreamingBfft(params).push(np.ones(fft_length, np.float32))
        return
    with pytest.raises(ValueError, match=f"^{message}$"):
        StreamingBfft(params)


def test_other_params_colour_with_their_own_range():
    """A 40-dB range: both entry points colour with the params given, not the defaults."""
    params = BfftParams(n_time_bins=16, samples_per_bin=512, fft_length=1024,
                        n_frequency_rows=32, dynamic_range_db=40.0)
    audio = music_like(1.0, 44100)[:params.window_samples]
    stream = StreamingBfft(params)
    stream.push(audio)
    expected = columns_to_image(stream.columns_db(), params)
    np.testing.assert_array_equal(stream.image(), expected)
    np.testing.assert_array_equal(bfft_image(audio, params=params), expected)
    assert not np.array_equal(expected, columns_to_image(stream.columns_db()))


def test_short_input_is_padded_at_the_end():
    audio = music_like(20.0, 44100)
    padded = np.pad(audio, (0, P.window_samples - audio.shape[0]))
    np.testing.assert_array_equal(bfft_image(audio), bfft_image(padded))
    with pytest.raises(ValueError, match="^samples contain NaN or infinity$"):
        bfft_image(np.array([0.0, np.inf], np.float32))
