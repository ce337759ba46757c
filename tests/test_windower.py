"""Windower: warm-up, hop scheduling, window spans, silence gate, image == offline."""

from __future__ import annotations

import numpy as np

from daemon.windower import Windower
from models.bfft import DEFAULT_PARAMS, bfft_image
from models.features import BfftExtractor

P = DEFAULT_PARAMS


def make_windower() -> Windower:
    return Windower(BfftExtractor(P), P.sample_rate_hz, 2.0, -50.0)


def noise(n_samples: int, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amplitude * np.random.default_rng(seed).standard_normal(n_samples)).astype(np.float32)


def feed(windower: Windower, audio: np.ndarray, chunk: int) -> list:
    windows = []
    for start in range(0, audio.shape[0], chunk):
        window = windower.push(audio[start : start + chunk])
        if window is not None:
            windows.append(window)
    return windows


def test_hop_is_rounded_to_whole_bins():
    windower = make_windower()
    assert windower.hop_bins == 15
    assert abs(windower.hop_seconds - 2.009) < 0.001


def test_warm_up_then_a_window_every_hop():
    windower = make_windower()
    audio = noise(P.window_samples + 3 * windower.hop_samples + 100)
    windows = feed(windower, audio, 4410)
    assert windower.warm and len(windows) == 4
    ends = [w.end_sample for w in windows]
    assert ends[0] == P.window_samples
    assert np.all(np.diff(ends) == windower.hop_samples)
    assert all(w.end_sample - w.start_sample == P.window_samples for w in windows)


def test_window_image_equals_offline_image():
    windower = make_windower()
    audio = noise(P.window_samples + windower.hop_samples)
    last = feed(windower, audio, 1000)[-1]
    expected = bfft_image(audio[last.start_sample : last.end_sample])
    assert np.abs(last.features.astype(int) - expected).max() <= 4  # <= 1 level apart


def test_not_warm_before_30_seconds():
    windower = make_windower()
    assert feed(windower, noise(P.window_samples - 1), 44100) == []
    assert not windower.warm and 0.99 < windower.warm_fraction < 1.0


def test_silence_gate():
    windower = make_windower()
    audio = np.concatenate([noise(P.window_samples), np.zeros(windower.hop_samples, np.float32)])
    windows = feed(windower, audio, 44100)
    assert not windows[0].silent and windows[0].features is not None
    assert windows[-1].silent and windows[-1].features is None
    assert windows[-1].rms_dbfs < -100
    assert windower.n_silent_windows == sum(w.silent for w in windows) >= 1  # /healthz count


def test_big_chunk_keeps_only_newest_window():
    windower = make_windower()
    windows = feed(windower, noise(P.window_samples + 5 * windower.hop_samples), 10**7)
    assert len(windows) == 1
    assert windows[0].end_sample == P.window_samples + 5 * windower.hop_samples
