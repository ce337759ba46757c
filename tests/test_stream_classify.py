"""Streamed ``genred classify`` equals the whole-file classification, in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.audio import load_audio
from models.audio_stream import StreamInfo
from models.features import make_extractor
from models.outcome import split_outputs
from training import classify
from training.classify import PREDICT_BATCH, classify_song, slice_images

pytestmark = pytest.mark.tf
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "models" / "genred-default"
GTZAN = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini"
RSS_TIMEOUT_SECONDS = 300


def make_music_like(path: Path, seconds: float, rate_hz: int = 22050) -> Path:
    """A lavfi signal that changes over time (chirping tone plus pink noise) as FLAC."""
    graph = (f"aevalsrc=0.3*sin(2*PI*(200+50*sin(t/7))*t)+0.1*sin(2*PI*3000*t)*lt(mod(t\\,20)\\,9)"
             f":s={rate_hz}:d={seconds}[a];anoisesrc=c=pink:a=0.05:seed=7:r={rate_hz}:d={seconds}[n];"
             "[a][n]amix=inputs=2")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-filter_complex",
                    graph, "-ac", "1", str(path)], check=True, timeout=120)
    return path


def whole_file_reference(loaded, path: Path) -> tuple[list[float], np.ndarray]:
    """Slice starts (s) and raw outputs of today's in-memory classification."""
    samples = load_audio(path)
    extractor = make_extractor(loaded.contract.frontend_name, loaded.contract.frontend_params)
    starts, images = slice_images(samples, 30.0, str(path), extractor)
    outputs = np.concatenate([loaded.predict_outputs(images[i:i + PREDICT_BATCH])
                              for i in range(0, len(images), PREDICT_BATCH)])
    return [round(s / 44100, 3) for s in starts], outputs


def assert_same(result: dict, reference: tuple[list[float], np.ndarray], labels) -> None:
    """Same slice starts and probabilities within 1e-4 (rounded output) / 1e-5 (raw)."""
    starts, outputs = reference
    assert [s["start_seconds"] for s in result["slices"]] == starts
    streamed = np.array([[s["probabilities"][label] for label in labels]
                         for s in result["slices"]])
    probabilities = split_outputs(outputs, len(labels))[0]
    np.testing.assert_allclose(streamed, np.round(probabilities, 4), atol=1.01e-4)


@pytest.fixture(scope="module")
def default_model():
    from models.loader import load_artifact

    return load_artifact(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    return make_music_like(tmp_path_factory.mktemp("audio") / "long.flac", 275.0)


def test_streamed_equals_whole_file_on_a_real_clip(default_model, monkeypatch):
    if not GTZAN.is_dir():
        pytest.skip("no shared GTZAN clips")
    clip = sorted((GTZAN / "jazz").glob("*.flac"))[0]
    raw = _capture_outputs(monkeypatch)
    result = classify_song(default_model, str(clip), progress=False)
    raw = list(raw)
    starts, outputs = whole_file_reference(default_model, clip)
    assert_same(result, (starts, outputs), default_model.labels)
    np.testing.assert_allclose(np.concatenate(raw), outputs, atol=1e-5)


def test_streamed_equals_whole_file_on_a_long_file(default_model, long_file, monkeypatch):
    raw = _capture_outputs(monkeypatch)
    result = classify_song(default_model, str(long_file), progress=False)
    raw = list(raw)
    starts, outputs = whole_file_reference(default_model, long_file)
    assert starts[0] == 30.0 and len(starts) == result["n_slices"] == 7
    assert_same(result, (starts, outputs), default_model.labels)
    np.testing.assert_allclose(np.concatenate(raw), outputs, atol=1e-5)
    assert [len(batch) for batch in raw] == [1] * 7  # musicnn: 10 patches per predict call


def test_vgg16_bfft_streams_too(vgg16_artifact, long_file, monkeypatch):
    """BFFT images are uint8 colour maps: float rounding may move a rare pixel by a level."""
    from models.loader import load_artifact

    loaded = load_artifact(vgg16_artifact)
    inputs = _capture_inputs(monkeypatch)
    result = classify_song(loaded, str(long_file), hop_seconds=20.0, progress=False)
    samples = load_audio(long_file)
    starts, images = slice_images(samples, 20.0, str(long_file))
    assert [s["start_seconds"] for s in result["slices"]] == [s / 44100 for s in starts]
    assert [len(batch) for batch in inputs] == [8, 2]
    difference = np.abs(np.concatenate(inputs).astype(int) - images.astype(int))
    assert (difference > 0).mean() < 1e-4, ((difference > 0).mean(), difference.max())


def test_a_stream_without_duration_gives_the_same_result(default_model, long_file,
                                                          monkeypatch):
    with_duration = classify_song(default_model, str(long_file), progress=False)
    monkeypatch.setattr(classify, "probe_stream", lambda source: StreamInfo(22050, None))
    without = classify_song(default_model, str(long_file), progress=True)
    assert without == with_duration


def _capture_inputs(monkeypatch) -> list[np.ndarray]:
    """Record every feature batch LoadedModel.predict_outputs is given."""
    from models.loader import LoadedModel

    seen: list[np.ndarray] = []
    original = LoadedModel.predict_outputs

    def recording(self, features):
        seen.append(features.copy())
        return original(self, features)

    monkeypatch.setattr(LoadedModel, "predict_outputs", recording)
    return seen


def _capture_outputs(monkeypatch) -> list[np.ndarray]:
    """Record every raw output batch LoadedModel.predict_outputs returns."""
    from models.loader import LoadedModel

    seen: list[np.ndarray] = []
    original = LoadedModel.predict_outputs

    def recording(self, features):
        outputs = original(self, features)
        seen.append(outputs)
        return outputs

    monkeypatch.setattr(LoadedModel, "predict_outputs", recording)
    return seen


_CHILD = ("import resource, sys\nfrom daemon.cli import main\nrc = main(sys.argv[1:])\n"
          "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
          "file=sys.stderr)\nsys.exit(rc)\n")


def peak_rss_mb(model: Path, audio: Path) -> float:
    """Peak RSS of a ``genred classify`` process on ``audio`` (its ffmpeg not counted)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", _CHILD, "classify", str(model), str(audio),
                           "--json"], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=RSS_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [x for x in done.stderr.splitlines() if x.startswith("MAXRSS_KB")][-1]
    return int(line.split()[1]) / 1024


def test_peak_memory_does_not_grow_with_file_length(tmp_path, ffmpeg):
    five = make_music_like(tmp_path / "five.flac", 300.0)
    twenty = make_music_like(tmp_path / "twenty.flac", 1200.0)
    peak_five, peak_twenty = peak_rss_mb(DEFAULT_MODEL, five), peak_rss_mb(DEFAULT_MODEL, twenty)
    # Whole-file decoding held >= 15 min x 44.1 kHz x 4 B = 159 MB more for the long file.
    assert peak_twenty - peak_five < 40, (peak_five, peak_twenty)
