"""Tests for daemon.ringbuffer.RingBuffer."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.ringbuffer import RingBuffer


@pytest.mark.parametrize("capacity_samples", [1, 7, 64, 1000])
def test_wraparound_matches_reference_concatenation(capacity_samples: int) -> None:
    rng = np.random.default_rng(capacity_samples)
    ring = RingBuffer(capacity_samples)
    written: list[np.ndarray] = []
    for _ in range(300):
        n_samples = int(rng.integers(0, 2 * capacity_samples + 3))
        chunk = rng.standard_normal(n_samples).astype(np.float32)
        ring.write(chunk)
        written.append(chunk)
        reference = np.concatenate(written)
        assert ring.total_samples == reference.size
        assert ring.n_available == min(reference.size, capacity_samples)
        n_read = int(rng.integers(0, ring.n_available + 1))
        expected = reference[reference.size - n_read :]
        np.testing.assert_array_equal(ring.latest(n_read), expected)
        np.testing.assert_array_equal(
            ring.latest(ring.n_available), reference[reference.size - ring.n_available :]
        )


def test_chunk_longer_than_capacity_keeps_newest() -> None:
    ring = RingBuffer(4)
    ring.write(np.array([1.0, 2.0], dtype=np.float32))
    ring.write(np.arange(10, 20, dtype=np.float32))
    np.testing.assert_array_equal(ring.latest(4), [16.0, 17.0, 18.0, 19.0])
    assert ring.total_samples == 12
    ring.write(np.array([99.0], dtype=np.float32))
    np.testing.assert_array_equal(ring.latest(4), [17.0, 18.0, 19.0, 99.0])


def test_audio_clock_counts_every_sample_including_empty_and_dropped() -> None:
    ring = RingBuffer(5)
    assert ring.total_samples == 0
    assert ring.n_available == 0
    ring.write(np.zeros(0, dtype=np.float32))
    assert ring.total_samples == 0
    ring.write(np.ones(3, dtype=np.float32))
    assert (ring.total_samples, ring.n_available) == (3, 3)
    ring.write(np.ones(11, dtype=np.float32))
    assert (ring.total_samples, ring.n_available) == (14, 5)


def test_latest_returns_float32_copy() -> None:
    ring = RingBuffer(8)
    ring.write(np.arange(6, dtype=np.float64))
    out = ring.latest(3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [3.0, 4.0, 5.0])
    out[:] = -1.0
    np.testing.assert_array_equal(ring.latest(3), [3.0, 4.0, 5.0])


def test_requesting_more_than_available_or_capacity_raises() -> None:
    ring = RingBuffer(4)
    ring.write(np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError):
        ring.latest(3)
    ring.write(np.ones(10, dtype=np.float32))
    with pytest.raises(ValueError):
        ring.latest(5)
    with pytest.raises(ValueError):
        ring.latest(-1)


@pytest.mark.parametrize("shape", [(), (2, 3), (4, 1)])
def test_non_1d_chunk_rejected_without_changing_state(shape: tuple[int, ...]) -> None:
    ring = RingBuffer(4)
    ring.write(np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError):
        ring.write(np.zeros(shape, dtype=np.float32))
    assert ring.total_samples == 2
    np.testing.assert_array_equal(ring.latest(2), [1.0, 1.0])


@pytest.mark.parametrize("capacity_samples", [0, -3, 2.5])
def test_bad_capacity_rejected(capacity_samples: float) -> None:
    with pytest.raises(ValueError):
        RingBuffer(capacity_samples)  # type: ignore[arg-type]
