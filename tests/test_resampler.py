"""StreamingResampler equals scipy.signal.resample_poly whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from models.resample import SAMPLE_RATE_HZ, StreamingResampler, resample


def _stream(resampler: StreamingResampler, samples: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed ``samples`` in chunks of the given sizes (cycled), then flush."""
    outputs, start, index = [], 0, 0
    while start < samples.size:
        size = sizes[index % len(sizes)]
        outputs.append(resampler.process(samples[start:start + size]))
        start, index = start + size, index + 1
    streamed = np.concatenate(outputs)
    return np.concatenate([streamed, resampler.flush()]), streamed


@pytest.mark.parametrize("from_hz", [48000, 22050, 16000])
@pytest.mark.parametrize("chunking", ["1", "7", "1000", "random"])
def test_streaming_equals_resample_poly(from_hz: int, chunking: str) -> None:
    rng = np.random.default_rng(from_hz)
    duration_seconds = 0.3 if chunking == "1" else 1.0
    samples = rng.standard_normal(int(from_hz * duration_seconds)).astype(np.float32) * 0.5
    sizes = [int(s) for s in rng.integers(0, 3000, 200)] if chunking == "random" else [
        int(chunking)]
    resampler = StreamingResampler(from_hz, SAMPLE_RATE_HZ)
    reference = resample(samples, from_hz, SAMPLE_RATE_HZ)

    flushed, streamed = _stream(resampler, samples, sizes)

    assert flushed.dtype == np.float32
    assert flushed.size == reference.size
    assert np.max(np.abs(flushed - reference)) < 1e-4
    # Without flush only the last filter length is missing, the rest already matches.
    assert reference.size - streamed.size <= resampler.delay_input_samples * (
        SAMPLE_RATE_HZ / from_hz) + 2
    assert np.max(np.abs(streamed - reference[: streamed.size])) < 1e-4


def test_sine_keeps_frequency_and_amplitude() -> None:
    from_hz = 48000
    times_seconds = np.arange(from_hz) / from_hz
    sine = (0.5 * np.sin(2 * np.pi * 1000 * times_seconds)).astype(np.float32)
    resampler = StreamingResampler(from_hz, SAMPLE_RATE_HZ)
    _, streamed = _stream(resampler, sine, [4800])
    middle = streamed[4410:-4410]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE_HZ / middle.size
    assert abs(peak_hz - 1000) < 5
    assert abs(np.max(np.abs(middle)) - 0.5) < 0.01


def test_equal_rates_pass_through_and_reset() -> None:
    resampler = StreamingResampler(44100, 44100)
    samples = np.linspace(-1, 1, 100, dtype=np.float32)
    assert np.array_equal(resampler.process(samples), samples)
    assert resampler.flush().size == 0
    other = StreamingResampler(16000, 44100)
    first = other.process(samples)
    other.reset()
    assert np.array_equal(other.process(samples), first)


def test_matches_scipy_directly_for_downsampling() -> None:
    samples = np.random.default_rng(1).standard_normal(9600).astype(np.float32)
    resampler = StreamingResampler(96000, SAMPLE_RATE_HZ)
    flushed, _ = _stream(resampler, samples, [333])
    reference = scipy.signal.resample_poly(samples, resampler.up, resampler.down)
    assert flushed.size == reference.size
    assert np.max(np.abs(flushed - reference)) < 1e-4


def test_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        StreamingResampler(0, 44100)
