"""BFFT spectrogram image: the front-end of VGG16-style models, shared by training and daemon.

A window of ``n_time_bins * samples_per_bin`` samples (224 bins of 5906 samples at 44.1 kHz,
29.999 s) becomes a 224x224x3 uint8 image:

1. each time bin's samples are multiplied by a Hann window (it suppresses the spectral
   leakage of a rectangular cut, so one tone lights a few rows, not the whole column),
   zero-padded to ``fft_length`` (6144 = 2**11 * 3, a fast length) and FFT'd;
2. power spectrum scaled so a full-scale sine reads 0 dB; bins from 0 Hz to
   ``max_frequency_hz`` (the lower half of the 0..22050 Hz range) are averaged into
   ``n_frequency_rows`` equal-width linear rows, lowest frequency at the bottom row;
3. dB relative to the window's own peak (so per-window peak normalisation is a constant
   offset), clipped to ``dynamic_range_db``; a window whose peak is below
   ``floor_db + dynamic_range_db`` is referenced to that level instead, so silence maps to
   the floor colour (never NaN, never a full-brightness image of noise);
4. levels 0..255 through matplotlib's 'brg' colormap (blue = quiet, red = mid, green = loud).

Because every time bin is its own FFT frame, :class:`StreamingBfft` computes each column once
as its samples arrive and produces the same image as :func:`bfft_image`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

from models.resample import SAMPLE_RATE_HZ, resample

FRONTEND_NAME = "bfft"
FRONTEND_VERSION = 1


@dataclass(frozen=True)
class BfftParams:
    """Every parameter that shapes the BFFT image; stored in each model's contract."""

    sample_rate_hz: int = SAMPLE_RATE_HZ
    """Contract sample rate in Hz; other rates are resampled to it."""
    n_time_bins: int = 224
    """Image columns: non-overlapping time bins per window."""
    samples_per_bin: int = 5906
    """Samples per time bin (5906 / 44100 Hz = 0.1339 s; 224 bins = 29.999 s)."""
    fft_length: int = 6144
    """FFT size in samples (bin samples zero-padded to it)."""
    window_function: str = "hann"
    """scipy.signal window applied to each bin's samples."""
    max_frequency_hz: float = 11025.0
    """Highest frequency kept in Hz (the lower half of the spectrum)."""
    n_frequency_rows: int = 224
    """Image rows: equal-width linear frequency bands from 0 Hz to max_frequency_hz."""
    dynamic_range_db: float = 80.0
    """Levels below the window's peak minus this many dB are clipped to the floor colour."""
    floor_db: float = -160.0
    """Absolute power floor in dB re full scale (avoids log(0))."""
    colormap: str = "brg"
    """matplotlib colormap name of the level-to-RGB table."""

    @property
    def window_samples(self) -> int:
        """Samples in one full image window."""
        return self.n_time_bins * self.samples_per_bin

    @property
    def bin_seconds(self) -> float:
        """Duration of one time bin in seconds."""
        return self.samples_per_bin / self.sample_rate_hz

    @property
    def window_seconds(self) -> float:
        """Duration of one window in seconds."""
        return self.window_samples / self.sample_rate_hz

    def to_dict(self) -> dict:
        """Plain dict of the parameters (for contract.json)."""
        return dataclasses.asdict(self)

    def row_of_frequency(self, frequency_hz: float) -> int:
        """Image row index (0 = top = highest) whose band holds ``frequency_hz``."""
        band = int(frequency_hz / self.max_frequency_hz * self.n_frequency_rows)
        return self.n_frequency_rows - 1 - min(band, self.n_frequency_rows - 1)


DEFAULT_PARAMS = BfftParams()

# matplotlib's 'brg' segment data (matplotlib/_cm.py): blue -> red -> green.
_BRG_SEGMENTS = {
    "red": ((0.0, 0.0, 0.0), (0.5, 1.0, 1.0), (1.0, 0.0, 0.0)),
    "green": ((0.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "blue": ((0.0, 1.0, 1.0), (0.5, 0.0, 0.0), (1.0, 0.0, 0.0)),
}


def _segment_lut(segments: tuple, n_levels: int) -> np.ndarray:
    """One channel's table, with the arithmetic of matplotlib's _create_lookup_table."""
    data = np.array(segments, dtype=float)
    x, y0, y1 = data[:, 0] * (n_levels - 1), data[:, 1], data[:, 2]
    xind = (n_levels - 1) * np.linspace(0, 1, n_levels)
    ind = np.searchsorted(x, xind)[1:-1]
    distance = (xind[1:-1] - x[ind - 1]) / (x[ind] - x[ind - 1])
    inner = distance * (y0[ind] - y1[ind - 1]) + y1[ind - 1]
    return np.clip(np.concatenate([[y1[0]], inner, [y0[-1]]]), 0.0, 1.0)


def brg_lookup_table(n_levels: int = 256) -> np.ndarray:
    """The 'brg' colormap as an (n_levels, 3) uint8 table, equal to matplotlib's bytes LUT."""
    channels = [_segment_lut(_BRG_SEGMENTS[name], n_levels) for name in ("red", "green", "blue")]
    return (np.stack(channels, axis=1) * 255).astype(np.uint8)


_BRG_TABLE = brg_lookup_table()


class _ColumnMaker:
    """Turns frames of one time bin each into dB columns (one per frame)."""

    def __init__(self, params: BfftParams) -> None:
        self.params = params
        window = scipy.signal.get_window(params.window_function, params.samples_per_bin)
        self._window = window.astype(np.float32)
        # Power of a full-scale sine's peak bin is (sum(window) / 2) ** 2.
        self._power_scale = float((2.0 / window.sum()) ** 2)
        self._row_starts, self._row_counts = _row_bands(params)
        self._n_bins_kept = int(self._row_starts[-1] + self._row_counts[-1])

    def columns_db(self, frames: np.ndarray) -> np.ndarray:
        """dB columns, shape (n_frames, n_frequency_rows), row 0 = lowest frequency."""
        spectrum = scipy.fft.rfft(frames * self._window, n=self.params.fft_length, axis=-1)
        power = np.square(np.abs(spectrum[:, :self._n_bins_kept]), dtype=np.float64)
        # each row is the mean of a contiguous band of FFT bins
        rows = np.add.reduceat(power, self._row_starts, axis=1) * (
            self._power_scale / self._row_counts)
        floor = 10.0 ** (self.params.floor_db / 10.0)
        return (10.0 * np.log10(np.maximum(rows, floor))).astype(np.float32)


def _row_bands(params: BfftParams) -> tuple[np.ndarray, np.ndarray]:
    """(first FFT bin, number of bins) of each of the equal-width frequency rows."""
    bin_hz = params.sample_rate_hz / params.fft_length
    n_bins = int(np.floor(params.max_frequency_hz / bin_hz))
    if n_bins < params.n_frequency_rows:
        raise ValueError("fft_length too small for the requested frequency rows")
    centres_hz = np.arange(n_bins) * bin_hz
    rows = np.minimum(
        (centres_hz / params.max_frequency_hz * params.n_frequency_rows).astype(int),
        params.n_frequency_rows - 1,
    )
    counts = np.bincount(rows, minlength=params.n_frequency_rows)
    if np.any(counts == 0):
        raise ValueError("fft_length too small: a frequency row would have no FFT bin")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return starts.astype(np.intp), counts.astype(np.float64)


def columns_to_image(columns_db: np.ndarray, params: BfftParams = DEFAULT_PARAMS) -> np.ndarray:
    """Colour dB columns (n_time_bins, n_rows) into the uint8 RGB image (rows, bins, 3)."""
    reference_db = max(float(columns_db.max()), params.floor_db + params.dynamic_range_db)
    relative = (columns_db - reference_db) / params.dynamic_range_db + 1.0
    levels = np.clip((relative * 256.0).astype(np.int32), 0, 255)
    # columns are time-major with row 0 lowest; the image puts time on x, low at the bottom.
    return _BRG_TABLE[levels.T[::-1]]


def bfft_image(
    samples: np.ndarray,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    params: BfftParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """BFFT image of one window of mono audio; shorter input is zero-padded at the end."""
    samples = _as_mono_float32(samples)
    samples = resample(samples, sample_rate_hz, params.sample_rate_hz)
    n_window = params.window_samples
    if samples.shape[0] < n_window:
        samples = np.pad(samples, (0, n_window - samples.shape[0]))
    frames = samples[:n_window].reshape(params.n_time_bins, params.samples_per_bin)
    return columns_to_image(_ColumnMaker(params).columns_db(frames), params)


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    """Validate 1-D finite-size audio and return it as float32."""
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {samples.shape}")
    samples = samples.astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain NaN or infinity")
    return samples


class StreamingBfft:
    """Incremental BFFT: computes each time-bin column once, as soon as its samples arrive."""

    def __init__(self, params: BfftParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self._maker = _ColumnMaker(params)
        self._pending = np.zeros(params.samples_per_bin, dtype=np.float32)
        self._n_pending = 0
        self._columns = np.zeros((params.n_time_bins, params.n_frequency_rows), np.float32)
        self._n_columns_total = 0

    @property
    def n_columns_total(self) -> int:
        """Columns computed since the start (one per complete time bin)."""
        return self._n_columns_total

    @property
    def n_samples_total(self) -> int:
        """Samples consumed since the start."""
        return self._n_columns_total * self.params.samples_per_bin + self._n_pending

    @property
    def ready(self) -> bool:
        """True once a full window of columns exists."""
        return self._n_columns_total >= self.params.n_time_bins

    def push(self, samples: np.ndarray) -> int:
        """Feed contract-rate mono samples (any length); returns the number of new columns."""
        samples = _as_mono_float32(samples)
        bin_size = self.params.samples_per_bin
        before = self._n_columns_total
        offset = 0
        if self._n_pending:
            take = min(bin_size - self._n_pending, samples.shape[0])
            self._pending[self._n_pending : self._n_pending + take] = samples[:take]
            self._n_pending += take
            offset = take
            if self._n_pending < bin_size:
                return 0
            self._store(self._maker.columns_db(self._pending[np.newaxis]))
            self._n_pending = 0
        n_full = (samples.shape[0] - offset) // bin_size
        if n_full:
            frames = samples[offset : offset + n_full * bin_size].reshape(n_full, bin_size)
            self._store(self._maker.columns_db(frames))
        rest = samples[offset + n_full * bin_size :]
        self._pending[: rest.shape[0]] = rest
        self._n_pending = rest.shape[0]
        return self._n_columns_total - before

    def _store(self, columns: np.ndarray) -> None:
        """Append dB columns to the ring of the newest n_time_bins columns."""
        n_bins = self.params.n_time_bins
        n_new = columns.shape[0]
        kept = columns[-n_bins:]
        first_index = self._n_columns_total + n_new - kept.shape[0]
        slots = (first_index + np.arange(kept.shape[0])) % n_bins
        self._columns[slots] = kept
        self._n_columns_total += n_new

    def columns_db(self) -> np.ndarray:
        """The newest n_time_bins dB columns, oldest first (zero-filled before warm-up)."""
        start = self._n_columns_total % self.params.n_time_bins
        return np.roll(self._columns, -start, axis=0)

    def image(self) -> np.ndarray:
        """The current window's image (the newest 224 complete bins)."""
        if not self.ready:
            raise RuntimeError(
                f"window not full: {self._n_columns_total}/{self.params.n_time_bins} bins"
            )
        return columns_to_image(self.columns_db(), self.params)
