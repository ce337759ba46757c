"""PatchCache: each patch encoded once, pooled window equals the offline mean of its patches."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from models.musicnn.patch_cache import PatchCache, encode_pending
from models.musicnn.streaming import StreamingMusicnnMel, stream_patches
from tests.test_musicnn_streaming import music_like

RATE_HZ = 44100
PROJECTION = np.random.default_rng(7).standard_normal((96, 8)).astype(np.float32)


class CountingEncoder:
    """A deterministic per-patch encoder that records every patch it is asked to encode."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.keys: list[bytes] = []

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        self.calls.append(patches.shape[0])
        self.keys.extend(patch.tobytes() for patch in patches)
        return encode_offline(patches)


def encode_offline(patches: np.ndarray) -> np.ndarray:
    """The fake encoder (linear, row by row so batching never changes a bit): -> (n, 8)."""
    return np.stack([patch.mean(axis=0) @ PROJECTION for patch in patches])


def fake_patches(first_index: int, n_patches: int) -> np.ndarray:
    """Small patches whose values encode their grid index."""
    indices = np.arange(first_index, first_index + n_patches, dtype=np.float32)
    return np.broadcast_to(indices[:, None, None], (n_patches, 4, 96)).copy()


def test_streamed_windows_pool_like_offline_and_encode_each_patch_once() -> None:
    """Per 2-s hop: new patches only; pooled == mean of the window's patches, encoded offline."""
    samples = music_like(50.0, seed=11)
    reference = stream_patches(samples)
    frontend, cache, encoder = StreamingMusicnnMel(), PatchCache(10), CountingEncoder()
    streamed, n_windows = [], 0
    for hop_start in range(0, samples.shape[0], 2 * RATE_HZ):
        for start in range(hop_start, min(hop_start + 2 * RATE_HZ, samples.shape[0]), 4410):
            new = frontend.push(samples[start:min(start + 4410, hop_start + 2 * RATE_HZ)])
            cache.add(new.first_index, new.patches)
            streamed.extend(new.patches)
        cache.encode(encoder)
        if not cache.ready:
            assert cache.newest_index < 9
            continue
        window = slice(cache.window_indices.start, cache.window_indices.stop)
        pooled = cache.pooled()
        # the cache adds nothing: bit for bit the mean of the window's patches encoded at once
        np.testing.assert_array_equal(pooled, encode_offline(np.stack(streamed[window])).mean(0))
        np.testing.assert_allclose(pooled, encode_offline(reference[window]).mean(0),
                                   rtol=0, atol=1e-4)
        n_windows += 1
    assert frontend.n_patches_total == reference.shape[0] == 16
    assert n_windows == 11
    assert len(encoder.keys) == len(set(encoder.keys)) == 16  # each patch exactly once
    assert max(encoder.calls) == 1 and cache.n_encoded_total == 16


def test_encoder_behind_the_stream_encodes_only_the_newest_window() -> None:
    """15 patches queued before the encoder runs: the 5 stale ones are never encoded."""
    cache, encoder = PatchCache(10), CountingEncoder()
    cache.add(0, fake_patches(0, 7))
    cache.add(7, fake_patches(7, 8))
    assert cache.n_pending == 10 and not cache.ready
    assert cache.encode(encoder) == 10 and encoder.calls == [10]
    indices, outputs = cache.outputs()
    assert indices == list(range(5, 15)) and outputs.shape == (10, 8)
    np.testing.assert_array_equal(cache.pooled(), encode_offline(fake_patches(5, 10)).mean(0))
    assert cache.encode(encoder) == 0 and encoder.calls == [10]


def test_known_patches_are_not_encoded_again_and_windows_slide() -> None:
    """Re-sent or overlapping patches cost nothing; the window keeps the newest 10."""
    cache, encoder = PatchCache(10), CountingEncoder()
    cache.add(0, fake_patches(0, 10))
    cache.encode(encoder)
    cache.add(5, fake_patches(5, 6))  # 5..9 known, 10 new
    assert cache.n_pending == 1
    cache.encode(encoder)
    assert encoder.calls == [10, 1] and cache.window_indices == range(1, 11)
    np.testing.assert_array_equal(cache.pooled(), encode_offline(fake_patches(1, 10)).mean(0))


def test_partial_window_and_gaps() -> None:
    """Before a full window pooled() needs min_patches; a gap leaves missing patches."""
    cache, encoder = PatchCache(4), CountingEncoder()
    with pytest.raises(RuntimeError, match="0 of 4"):
        cache.pooled()
    cache.add(0, fake_patches(0, 2))
    cache.encode(encoder)
    assert not cache.ready
    np.testing.assert_array_equal(cache.pooled(min_patches=2),
                                  encode_offline(fake_patches(0, 2)).mean(0))
    cache.add(4, fake_patches(4, 1))  # patches 2 and 3 never arrive
    cache.encode(encoder)
    assert cache.window_indices == range(1, 5) and not cache.ready
    assert cache.outputs()[0] == [1, 4]


def test_encode_pending_batches_sources_in_one_call() -> None:
    """Three sources' new patches go through the encoder together, outputs back to each."""
    caches, encoder = [PatchCache(10) for _ in range(3)], CountingEncoder()
    for number, cache in enumerate(caches):
        cache.add(0, fake_patches(10 * number, number + 1))
    assert encode_pending(caches, encoder) == 6 and encoder.calls == [6]
    for number, cache in enumerate(caches):
        np.testing.assert_array_equal(cache.outputs()[1],
                                      encode_offline(fake_patches(10 * number, number + 1)))
    assert encode_pending(caches, encoder) == 0 and encoder.calls == [6]


def test_failed_encoder_keeps_patches_queued() -> None:
    """An encoder error re-queues the patches; a wrong output shape is an error too."""
    cache = PatchCache(10)
    cache.add(0, fake_patches(0, 3))

    def broken(patches: np.ndarray) -> np.ndarray:
        raise OSError("device lost")

    with pytest.raises(OSError):
        cache.encode(broken)
    with pytest.raises(ValueError, match="encoder gave"):
        cache.encode(lambda patches: np.zeros((1, 8)))
    assert cache.n_pending == 3
    assert cache.encode(CountingEncoder()) == 3 and cache.n_pending == 0
    with pytest.raises(ValueError):
        PatchCache(0)


def test_add_on_one_thread_encode_on_another() -> None:
    """Adder and encoder threads: no patch is encoded twice, the last window is complete."""
    cache, encoder = PatchCache(10), CountingEncoder()
    done = threading.Event()

    def encode_loop() -> None:
        while not done.is_set():
            cache.encode(encoder)

    worker = threading.Thread(target=encode_loop)
    worker.start()
    try:
        for index in range(300):
            cache.add(index, fake_patches(index, 1))
    finally:
        done.set()
        worker.join(timeout=10)
    cache.encode(encoder)
    assert len(encoder.keys) == len(set(encoder.keys)) == cache.n_encoded_total
    assert cache.ready and cache.window_indices == range(290, 300)
    np.testing.assert_array_equal(cache.pooled(), encode_offline(fake_patches(290, 10)).mean(0))


def test_history_keeps_outputs_of_a_window_taken_before_newer_patches() -> None:
    cache = PatchCache(n_patches=3, history=2)
    cache.add(0, fake_patches(0, 3))
    cache.encode(encode_offline)
    cache.add(3, fake_patches(3, 2))  # two newer patches arrive while window 0..2 is pooled
    np.testing.assert_array_equal(cache.window_outputs(2), encode_offline(fake_patches(0, 3)))
    cache.add(5, fake_patches(5, 1))
    with pytest.raises(KeyError):
        cache.window_outputs(2)  # patch 0 is older than window + history now


def test_a_patch_being_encoded_is_known_and_never_encoded_twice() -> None:
    """Patches re-sent while the encoder holds them are not queued again."""
    cache, encoder = PatchCache(4), CountingEncoder()
    cache.add(0, fake_patches(0, 4))
    indices, patches = cache.take_pending()  # the encoder has them, no outputs yet
    assert indices == [0, 1, 2, 3] and cache.n_pending == 0
    cache.add(2, fake_patches(2, 3))  # 2, 3 in flight; 4 new
    assert cache.n_pending == 1
    cache.store(indices, encoder(patches))
    assert cache.encode(encoder) == 1 and encoder.calls == [4, 1]
    assert len(encoder.keys) == len(set(encoder.keys)) == 5 and cache.n_encoded_total == 5
    np.testing.assert_array_equal(cache.pooled(), encode_offline(fake_patches(1, 4)).mean(0))


def test_limits_defaults_and_messages() -> None:
    assert PatchCache().n_patches == 10 and PatchCache().history == 0
    one = PatchCache(1)
    assert one.newest_index == -1 and list(one.window_indices) == [] and not one.ready
    one.add(0, fake_patches(0, 1))
    one.encode(encode_offline)
    assert one.ready and one.window_indices == range(0, 1)
    for n_patches, history in ((0, 0), (1, -1)):
        with pytest.raises(ValueError, match=rf"^need n_patches >= 1 and history >= 0, got "
                                             rf"{n_patches}, {history}$"):
            PatchCache(n_patches, history)


def test_patches_within_the_history_are_queued_older_ones_are_not() -> None:
    """Window 4 + history 2 behind patch 10: patch 5 is kept, patch 4 is stale."""
    cache = PatchCache(4, history=2)
    cache.add(10, fake_patches(10, 1))
    cache.add(4, fake_patches(4, 1))
    assert cache.n_pending == 1
    cache.add(5, fake_patches(5, 1))
    assert cache.n_pending == 2 and cache.take_pending()[0] == [5, 10]


def test_window_outputs_is_that_window_only_with_a_clear_error() -> None:
    cache = PatchCache(4, history=6)
    cache.add(0, fake_patches(0, 8))
    cache.encode(encode_offline)
    np.testing.assert_array_equal(cache.window_outputs(7), encode_offline(fake_patches(4, 4)))
    with pytest.raises(KeyError, match=r"window ending at patch 9: no output for \[8, 9\]"):
        cache.window_outputs(9)


def test_pooled_needs_enough_outputs() -> None:
    cache = PatchCache(4)
    cache.add(0, fake_patches(0, 2))
    cache.encode(encode_offline)
    with pytest.raises(RuntimeError, match=r"^2 of 4 patch outputs in the window$"):
        cache.pooled()
    with pytest.raises(RuntimeError, match=r"^2 of 3 patch outputs in the window$"):
        cache.pooled(min_patches=3)
    single = PatchCache(4)
    single.add(0, fake_patches(0, 1))
    single.encode(encode_offline)
    np.testing.assert_array_equal(single.pooled(min_patches=0), encode_offline(
        fake_patches(0, 1))[0])


def test_wrong_output_and_patch_counts_are_errors() -> None:
    cache = PatchCache(4)
    cache.add(0, fake_patches(0, 2))
    indices, patches = cache.take_pending()
    with pytest.raises(ValueError, match=r"^expected \(2, dim\) outputs, got \(3, 8\)$"):
        cache.store(indices, np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"^expected \(2, dim\) outputs, got \(16,\)$"):
        cache.store(indices, np.zeros(16))
    with pytest.raises(ValueError):
        cache.give_back(indices, patches[:1])
    cache.give_back(indices, patches)
    with pytest.raises(ValueError, match=r"^encoder gave \(3, 8\) for 2 patches$"):
        cache.encode(lambda batch: np.zeros((3, 8)))
