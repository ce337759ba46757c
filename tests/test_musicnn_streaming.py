"""Streaming musicnn-mel: patches equal the offline grid's for any chunking, emitted on time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from models.musicnn.features import window_patches
from models.musicnn.spec import PARAMS
from models.musicnn.stream_resample import StreamResampler
from models.musicnn.streaming import (
    PATCH_SAMPLES_16K,
    PATCH_SECONDS,
    StreamingMusicnnMel,
    hop_patches,
    patch_ready_samples,
    patch_start_sample,
    stream_patches,
)
from models.resample import resample

RATE_HZ = 44100
ATOL = 5e-5
"""Log-mel values reach ~6; float32 rounding in the resampler, FFT and mel product gives
<= 8e-6 here (largest in quiet bins: the rounding noise is broadband, the music is not)."""


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones + band-limited noise bursts at 44.1 kHz, float32."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * RATE_HZ)
    t = np.arange(n_samples) / RATE_HZ
    tones = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110, 440, 1250, 3300, 7000))
    noise = scipy.signal.lfilter(*scipy.signal.butter(6, 8000 / (RATE_HZ / 2)),
                                 rng.standard_normal(n_samples))
    pulses = (np.sin(2 * np.pi * 2 * t) > 0.6).astype(float)
    return (tones + 0.05 * noise * pulses).astype(np.float32)


def chunk_sizes(kind: str, seed: int = 1) -> list[int]:
    """Chunk sizes to cycle through: one fixed size or a random mix (zeros included)."""
    if kind == "random":
        rng = np.random.default_rng(seed)
        return [int(s) for s in rng.choice([0, 1, 3, 255, 256, 257, 2048, 30000], 400)]
    return [int(kind)]


def stream(samples: np.ndarray, sizes: list[int],
           frame_batch: int = 32) -> tuple[np.ndarray, list[int], list[int]]:
    """Push in chunks; return the patches, their indices and the input count at emission."""
    frontend = StreamingMusicnnMel(frame_batch=frame_batch)
    patches, indices, emitted_at = [], [], []
    start, step = 0, 0
    while start < samples.shape[0]:
        size = sizes[step % len(sizes)]
        new = frontend.push(samples[start:start + size])
        start, step = start + size, step + 1
        assert new.first_index == len(indices)
        patches.append(new.patches)
        indices.extend(new.indices)
        emitted_at.extend([frontend.n_samples_total] * new.patches.shape[0])
    assert frontend.n_samples_total == samples.shape[0]
    return np.concatenate(patches), indices, emitted_at


@pytest.mark.parametrize("chunking", ["1", "7", "1000", "4410", "44100", "random"])
def test_streaming_equals_offline(chunking: str) -> None:
    """Every chunking gives the offline grid's patches, each as soon as its samples exist."""
    seconds = 6.2 if chunking in ("1", "7") else 9.5
    samples = music_like(seconds)
    reference = stream_patches(samples)
    assert reference.shape[0] == (2 if seconds < 9 else 3)

    patches, indices, emitted_at = stream(samples, chunk_sizes(chunking))

    assert patches.shape == reference.shape and patches.dtype == np.float32
    assert indices == list(range(reference.shape[0]))
    np.testing.assert_allclose(patches, reference, rtol=0, atol=ATOL)
    size = max(chunk_sizes(chunking))
    for index, at in zip(indices, emitted_at, strict=True):
        ready = patch_ready_samples(index)
        assert ready <= at < ready + size or chunking == "random" and ready <= at


@pytest.mark.parametrize("frame_batch", [1, 5, 187, 1000])
def test_frame_batch_changes_cost_not_patches(frame_batch: int) -> None:
    """Frames computed one by one or in batches: same patches, emitted at the same sample."""
    samples = music_like(6.2, seed=2)
    patches, indices, emitted_at = stream(samples, [333], frame_batch)
    np.testing.assert_allclose(patches, stream_patches(samples), rtol=0, atol=ATOL)
    assert emitted_at == [patch_ready_samples(k) // 333 * 333 + 333 for k in indices]


@pytest.mark.parametrize("input_rate_hz", [16000, 22050, 48000])
def test_other_input_rates(input_rate_hz: int) -> None:
    """Any input rate streams onto the same 16 kHz grid as its offline reference."""
    samples = music_like(7.1, seed=6)[: int(6.5 * input_rate_hz)]
    frontend = StreamingMusicnnMel(input_rate_hz)
    patches = np.concatenate([frontend.push(samples[start:start + 1000]).patches
                              for start in range(0, samples.shape[0], 1000)])
    reference = stream_patches(samples, input_rate_hz)
    assert patches.shape[0] == reference.shape[0] == 2
    np.testing.assert_allclose(patches, reference, rtol=0, atol=ATOL)
    assert patch_ready_samples(1, input_rate_hz) <= samples.shape[0]


def test_patch_grid_rounding() -> None:
    """2.992-s patches: 131,947.2 input samples each, whole again every 5 patches."""
    assert PATCH_SAMPLES_16K == 47872
    assert patch_ready_samples(0) == 131973  # 131,947.2 - 2.76 + 27.6 of look-ahead
    steps = np.diff([patch_ready_samples(k) for k in range(11)])
    assert set(steps.tolist()) == {131947, 131948}
    assert patch_ready_samples(5) - patch_ready_samples(0) == 659736
    assert patch_ready_samples(10) - patch_ready_samples(0) == 1319472  # 29.920 s
    assert [patch_start_sample(k) for k in (0, 1, 5, 10)] == [0, 131947, 659736, 1319472]
    assert patch_ready_samples(3) - patch_start_sample(4) == 26  # resampler look-ahead
    assert abs(PATCH_SECONDS - 2.992) < 1e-12
    assert [hop_patches(s) for s in (0.5, 2.0, 3.0, 4.4, 6.0)] == [1, 1, 1, 1, 2]


@pytest.mark.parametrize("from_hz", [44100, 48000, 22050, 16000])
def test_resampler_equals_resample_poly(from_hz: int) -> None:
    """The streamed resampler gives resample_poly's samples (float32 rounding), on time."""
    samples = music_like(2.0, seed=3)
    resampler = StreamResampler(from_hz, 16000)
    outputs, start = [], 0
    for size in chunk_sizes("random", seed=4) * 2:
        outputs.append(resampler.process(samples[start:start + size]))
        start += size
        assert resampler.n_out == resampler.n_final(min(start, samples.shape[0]))
        if start >= samples.shape[0]:
            break
    streamed = np.concatenate(outputs)
    reference = resample(samples, from_hz, 16000)
    assert (0 if from_hz == 16000 else 1) <= reference.size - streamed.size <= 12
    np.testing.assert_allclose(streamed, reference[:streamed.size], rtol=0, atol=2e-6)
    assert resampler.inputs_for(streamed.size) <= samples.shape[0]
    assert resampler.inputs_for(streamed.size + 1) > samples.shape[0]


def test_silence_and_empty_pushes() -> None:
    """Empty chunks change nothing; digital silence gives finite all-zero patches."""
    frontend = StreamingMusicnnMel()
    assert frontend.push(np.zeros(0, np.float32)).patches.shape == (0, 187, 96)
    new = frontend.push(np.zeros(patch_ready_samples(1), np.float32))
    assert list(new.indices) == [0, 1]
    assert np.all(new.patches == 0.0)
    assert frontend.n_patches_total == 2 and frontend.n_frames_total >= 374


def test_grid_aligned_window_differs_from_per_window_features_only_at_its_cut() -> None:
    """window_patches of a window starting on a grid point = stream patches but 2 frames."""
    first_patch = 5  # patch 5 starts on a whole input sample: 659,736
    start = 659736
    samples = music_like(start / RATE_HZ + 30.1, seed=5)
    streamed = stream_patches(samples)[first_patch:first_patch + 10]
    assert streamed.shape[0] == 10
    windowed = window_patches(samples[start:start + PARAMS["window_samples"]])
    np.testing.assert_allclose(windowed[1:], streamed[1:], rtol=0, atol=1e-4)
    np.testing.assert_allclose(windowed[0, 2:], streamed[0, 2:], rtol=0, atol=1e-4)
    assert np.abs(windowed[0, :2] - streamed[0, :2]).max() > 1e-3


def test_real_audio_streams_like_offline(shared_data: Path) -> None:
    """A GTZAN clip (decoded to 44.1 kHz) in 4096-sample chunks equals the offline grid."""
    from models.audio import load_audio

    clips = sorted((shared_data / "gtzan-mini").glob("*/*.00000.flac"))
    if not clips:
        pytest.skip("no gtzan-mini clips")
    samples = load_audio(clips[0])[: 12 * RATE_HZ]
    patches, _, _ = stream(samples, [4096])
    reference = stream_patches(samples)
    assert patches.shape[0] == reference.shape[0] == 4
    np.testing.assert_allclose(patches, reference, rtol=0, atol=ATOL)
