"""Patch-head serving: windows on the patch grid, each patch encoded once, pooled like the model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from daemon.config import config_from_dict
from daemon.output import Output
from daemon.outputs import websocket_output
from daemon.service import Service
from daemon.windower import Windower
from models.musicnn.streaming import patch_ready_samples, patch_start_sample, stream_patches
from models.patch_serving import PatchExtractor, PatchPooling
from tests.real_helpers import render_pcm
from tests.test_musicnn_patch_cache import CountingEncoder, encode_offline
from tests.test_musicnn_streaming import music_like

RATE_HZ = 44100
MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "genred-default"


def feed(windower: Windower, audio: np.ndarray, chunk: int) -> list:
    windows = []
    for start in range(0, audio.shape[0], chunk):
        window = windower.push(audio[start:start + chunk])
        if window is not None:
            windows.append(window)
    return windows


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_windows_are_due_when_patches_complete() -> None:
    windower = Windower(PatchExtractor(10), RATE_HZ, 2.0, -50.0)
    assert windower.hop_bins == 1 and abs(windower.hop_seconds - 2.992) < 0.001
    windows = feed(windower, music_like(45.0), 4410)
    assert [w.features.last_index for w in windows] == list(range(9, 15))
    for window in windows:
        k = window.features.last_index
        assert window.end_sample == patch_start_sample(k + 1)
        assert window.start_sample == patch_start_sample(k - 9)
    assert Windower(PatchExtractor(10), RATE_HZ, 6.0, -50.0).hop_bins == 2


def test_window_is_due_in_the_chunk_that_completes_its_patch() -> None:
    windower = Windower(PatchExtractor(10), RATE_HZ, 2.0, -50.0)
    audio = music_like(31.0)
    ready = patch_ready_samples(9)
    assert windower.push(audio[:ready - 1]) is None and not windower.warm
    window = windower.push(audio[ready - 1:ready])
    assert window is not None and window.features.last_index == 9 and windower.warm


def test_pooling_equals_the_window_formula_and_encodes_each_patch_once() -> None:
    temperature, encoder = 2.0, CountingEncoder()
    pooling = PatchPooling(encoder, temperature, n_patches=10, n_outputs=8)
    windower = Windower(pooling.new_extractor(), RATE_HZ, 2.0, -50.0)
    audio = music_like(50.0)
    results = {}
    for start in range(0, audio.shape[0], 4410):  # each window classified as it is due
        window = windower.push(audio[start:start + 4410])
        if window is not None:
            results[window.features.last_index] = pooling.predict(
                pooling.collate([window.features]))
    reference = stream_patches(audio)
    assert sorted(results) == list(range(9, reference.shape[0]))
    assert sum(encoder.calls) == reference.shape[0] == len(set(encoder.keys))
    for k, outputs in results.items():
        expected = softmax(encode_offline(reference[k - 9:k + 1]).mean(0) / temperature)
        np.testing.assert_allclose(outputs[0].outputs, expected, rtol=0, atol=1e-5)


def test_a_slow_encoder_pools_the_window_it_was_given() -> None:
    """Windows of two sources in one batch; newer patches arrive before the batch runs."""
    pooling = PatchPooling(encode_offline, 1.0, n_patches=10, n_outputs=8)
    a, b = pooling.new_extractor(), pooling.new_extractor()
    audio = music_like(40.0)
    first = patch_ready_samples(9)
    a.push(audio[:first])
    b.push(audio[:first])
    windows = [a.features(lambda: audio), b.features(lambda: audio)]
    a.push(audio[first:])  # 3 more patches reach a's cache before the inference thread runs
    outputs = [result.outputs for result in pooling.predict(windows)]
    reference = stream_patches(audio)
    expected = softmax(encode_offline(reference[:10]).mean(0))
    np.testing.assert_allclose(outputs, [expected, expected], rtol=0, atol=1e-5)


def test_stale_window_is_a_stale_result() -> None:
    pooling = PatchPooling(encode_offline, 1.0, n_patches=10, n_outputs=8)
    extractor = pooling.new_extractor()
    audio = music_like(60.0)
    extractor.push(audio[:patch_ready_samples(9)])
    window = extractor.features(lambda: audio)
    extractor.push(audio[patch_ready_samples(9):])  # 10 patches later: window 0..9 is gone
    stale, fresh = pooling.predict([window, extractor.features(lambda: audio)])
    assert stale.stale and not fresh.stale and np.isfinite(fresh.outputs).all()
    assert fresh.patch_scores.shape == (10, 8)


def test_a_shed_window_skips_its_new_patch_for_good() -> None:
    """Window 10 replaced before it ran: its patch is never encoded; 11 and 12 pool over the
    9 encoded patches of their windows (no patch scores) and cost one patch each."""
    encoder = CountingEncoder()
    pooling = PatchPooling(encoder, 1.0, n_patches=10, n_outputs=8)
    windower = Windower(pooling.new_extractor(), RATE_HZ, 2.0, -50.0)
    audio = music_like(42.0)[:patch_ready_samples(12)]  # patches 0..12: none pruned yet
    windows = {w.features.last_index: w.features for w in feed(windower, audio, 4410)}
    assert sorted(windows) == [9, 10, 11, 12]
    first = pooling.predict([windows[9]])[0]
    assert first.patch_scores.shape == (10, 8) and encoder.calls == [10]
    pooling.discard(windows[10])
    shed = [pooling.predict([windows[k]])[0] for k in (11, 12)]
    assert encoder.calls == [10, 1, 1] and windows[9].cache.n_skipped_total == 1
    reference = encode_offline(stream_patches(audio))
    for k, result in zip((11, 12), shed, strict=True):
        kept = [i for i in range(k - 9, k + 1) if i != 10]
        assert result.patch_scores is None and not result.stale
        np.testing.assert_allclose(result.outputs, softmax(reference[kept].mean(0)),
                                   rtol=0, atol=1e-5)


def test_warming_patches_are_encoded_before_the_first_window() -> None:
    """Work ahead: each patch encoded as it exists; the first window needs only its newest."""
    from daemon.classifier import InferenceWorker, WindowJob

    temperature, encoder = 1.5, CountingEncoder()
    pooling = PatchPooling(encoder, temperature, n_patches=10, n_outputs=8)
    audios = [music_like(33.0, seed=seed) for seed in range(3)]
    windowers = [Windower(pooling.new_extractor(), RATE_HZ, 2.0, -50.0) for _ in audios]
    results: dict[str, np.ndarray] = {}
    encoded_when_due: dict[str, int] = {}

    async def run() -> None:
        worker = InferenceWorker(pooling.predict, max_batch_size=2, collate=pooling.collate,
                                 prefetch=pooling.prefetch)
        task = asyncio.create_task(worker.run(
            lambda job, result: results.setdefault(job.source_name, result.outputs)))
        for start in range(0, audios[0].shape[0], 4410):
            for index, (audio, windower) in enumerate(zip(audios, windowers, strict=True)):
                name, cache = f"s{index}", windower.extractor.cache
                window = windower.push(audio[start:start + 4410])
                if window is None and windower.pending_work() is not None:
                    worker.submit_work(name, windower.pending_work())
                elif window is not None:
                    encoded_when_due.setdefault(name, cache.n_encoded_total)
                    worker.submit(name, WindowJob(name, window.features, window.start_sample,
                                                  window.end_sample, RATE_HZ))
            await asyncio.wait_for(until(lambda: all(
                w.extractor.cache.n_encoded_total == w.extractor.cache.newest_index + 1
                for w in windowers)), 10)  # the worker keeps up (the real daemon need not)
        await asyncio.wait_for(until(lambda: len(results) == len(audios)), 10)
        worker.close()
        task.cancel()

    asyncio.run(run())
    assert encoded_when_due == {"s0": 9, "s1": 9, "s2": 9}
    assert len(encoder.keys) == len(set(encoder.keys))  # each patch encoded once
    assert max(encoder.calls) <= 2  # no burst: at most max_batch_size sources' patches per call
    for index, audio in enumerate(audios):
        expected = softmax(encode_offline(stream_patches(audio)[:10]).mean(0) / temperature)
        np.testing.assert_allclose(results[f"s{index}"], expected, rtol=0, atol=1e-5)


class PacedSource:
    """Chunks of a signal; before the chunk that completes a window, waits for the last result."""

    def __init__(self, audio: np.ndarray, results: dict, chunk: int = 4410) -> None:
        self.audio, self.results, self.chunk = audio, results, chunk

    async def chunks(self):
        for start in range(0, self.audio.shape[0], self.chunk):
            end = start + self.chunk
            due = [k for k in range(10, 40) if start < patch_ready_samples(k) <= end]
            while due and due[0] - 1 not in self.results:
                await asyncio.sleep(0.01)
            yield self.audio[start:end]

    async def close(self) -> None:
        """Nothing to release."""


class RecordingOutput(Output):
    """An output that keeps what it is given (the one-line way to add an output)."""

    name = "recorder"

    def __init__(self) -> None:
        self.predictions: list = []
        self.states: list = []

    def on_prediction(self, prediction, changed: bool) -> None:
        self.predictions.append(prediction)

    def on_state(self, status) -> None:
        self.states.append(status.state)


@pytest.mark.parametrize(("runtime", "change_patches"),
                         [("keras", 2), ("tflite", 2), ("tflite", 0)])
def test_daemon_outputs_equal_the_saved_model(tmp_path: Path, runtime: str,
                                              change_patches: int) -> None:
    """genred-default through the service (windower, worker, cache) == the Keras model's
    predict_outputs, with the Keras stages or the TFLite patch stage; predictions are
    published with the change detector on and off (``change_patches: 0``)."""
    pytest.importorskip("keras")
    from daemon.runner import load_model_handle
    from models.loader import load_model

    audio, real = paced_audio()
    placeholder = tmp_path / "unused.wav"  # the source is replaced by PacedSource
    placeholder.write_bytes(b"")
    config = config_from_dict({"server": {"port": 0}, "window": {"hop_seconds": 2.0},
                               "smoothing": {"change_patches": change_patches},
                               "sources": [{"name": "m", "kind": "url", "url": str(placeholder)}]})
    recorder = RecordingOutput()
    service = Service(config, load_model_handle(str(MODEL_DIR), runtime=runtime),
                      outputs=[("websocket", websocket_output), ("recorder", lambda _: recorder)])
    results: dict[int, np.ndarray] = {}
    on_result = service._on_result

    def record(job, result) -> None:
        k = next(k for k in range(40) if patch_start_sample(k + 1) == job.window_end_sample)
        results[k] = result.outputs
        on_result(job, result)

    service._on_result = record
    service._runtimes["m"].source = PacedSource(audio, results)

    async def run() -> None:
        await asyncio.wait_for(service.start_server(), 10)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.wait_for(until(lambda: 13 in results), 60)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    assert sorted(results) == [9, 10, 11, 12, 13] and service.worker.windows_dropped == 0
    assert service.worker.prefetch_calls >= 1 and service.worker.prefetch_errors == 0
    reference = stream_patches(audio)
    offline = load_model(MODEL_DIR).predict_outputs(
        np.stack([reference[k - 9:k + 1] for k in sorted(results)]))
    streamed = np.stack([results[k] for k in sorted(results)])
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=1e-4)
    assert service.worker.callback_errors == 0 and service._runtimes["m"].windows == 5
    if real:  # music: every window is published as a genre
        assert [p.window_end_ms for p in recorder.predictions] == [
            patch_start_sample(k + 1) * 1000 // 44100 for k in sorted(results)]
    detector = service._runtimes["m"].judge.change
    assert (detector is None) == (change_patches == 0)


REAL_CLIP = (Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini" / "country"
             / "country.00000.flac")


def paced_audio() -> tuple[np.ndarray, bool]:
    """42 s of a real clip (looped) when ../shared/data is there, else music-like tones."""
    if not REAL_CLIP.is_file():
        return music_like(42.0, seed=3), False
    pcm = np.frombuffer(render_pcm(REAL_CLIP, 42.0), np.int16)
    return (pcm.astype(np.float32) / 32768.0), True


async def until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.05)
