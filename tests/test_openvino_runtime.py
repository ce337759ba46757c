"""The OpenVINO runtime: genred-default's TFLite export read by OpenVINO gives LiteRT's
labels on real music (float32: the same logits; bfloat16: the same windows), the daemon
serves it, runtime auto measures it, and every bad input is a clear ArtifactError."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from daemon.assembly import build_service
from daemon.config import ConfigError, config_from_dict
from daemon.runner import load_model_handle
from models import openvino_runtime, runtime_choice
from models.audio import load_audio
from models.contract import ArtifactError
from models.loader import load_model
from models.musicnn.streaming import stream_patches
from models.openvino_runtime import OpenVinoPredictor, openvino_available
from models.patch_tflite import PatchLogitsPredictor
from models.runtime_probe import Candidate
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not openvino_available(), reason="openvino not installed")
MODEL_DIR = REPO_ROOT / "models" / "genred-default"
VIBE = REPO_ROOT / "daemon" / "demo" / "01_Kevin_MacLeod_-_Vibe_Ace.ogg"


@pytest.fixture(scope="module")
def vibe_windows() -> np.ndarray:
    """The 11 windows of 10 patches (one-patch hop) of a real 61-s demo clip."""
    patches = stream_patches(load_audio(VIBE)).astype(np.float32)
    return np.stack([patches[k:k + 10] for k in range(patches.shape[0] - 9)])


@pytest.fixture(scope="module")
def litert_outputs(vibe_windows: np.ndarray) -> np.ndarray:
    """LiteRT float32's pooled outputs of those windows (the served reference)."""
    return load_model(MODEL_DIR, "tflite", num_threads=1).predict_outputs(vibe_windows)


def test_float32_gives_litert_outputs(vibe_windows, litert_outputs) -> None:
    loaded = load_model(MODEL_DIR, "openvino", num_threads=1, precision="float32")
    assert isinstance(loaded.predictor, PatchLogitsPredictor)
    assert isinstance(loaded.predictor.stage, OpenVinoPredictor)
    assert loaded.predictor.describe() == "OpenVINO CPU (f32), 1 thread, per-patch stage"
    for batch in (vibe_windows, vibe_windows[:1], vibe_windows[:3]):  # any batch size
        got = loaded.predict_outputs(batch)
        assert got.shape == (len(batch), 11) and got.dtype == np.float32
        np.testing.assert_allclose(got, litert_outputs[:len(batch)], atol=1e-4)


def test_bfloat16_gives_litert_labels(vibe_windows, litert_outputs) -> None:
    """bfloat16 (native on avx512_bf16/AMX, float32 elsewhere): every window's label kept."""
    loaded = load_model(MODEL_DIR, "openvino", precision="bfloat16")
    got = loaded.predict_outputs(vibe_windows)
    np.testing.assert_array_equal(got.argmax(1), litert_outputs.argmax(1))
    np.testing.assert_allclose(got, litert_outputs, atol=0.05)
    assert "OpenVINO CPU (" in loaded.predictor.describe()


def test_side_by_side_calls_give_the_serial_outputs(vibe_windows) -> None:
    """Two streams: calls from two threads at once, and genred classify with two batches in
    flight, give what one call at a time gives, in order."""
    from concurrent.futures import ThreadPoolExecutor

    from training.classify import classify_song

    serial = load_model(MODEL_DIR, "openvino", precision="float32")
    parallel = load_model(MODEL_DIR, "openvino", precision="float32", parallel_calls=2)
    assert (serial.parallel_calls, parallel.parallel_calls) == (1, 2)
    assert parallel.predictor.describe().endswith("2 streams, per-patch stage")
    expected = serial.predict_outputs(vibe_windows)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(parallel.predict_outputs, [vibe_windows[k:k + 1]
                                                       for k in range(len(vibe_windows))]))
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-4)
    one, two = (classify_song(loaded, str(VIBE), hop_seconds=3.0, progress=False)
                for loaded in (serial, parallel))
    assert two["n_slices"] == one["n_slices"] > 10 and two["genre"] == one["genre"]
    assert [s["outcome"] for s in two["slices"]] == [s["outcome"] for s in one["slices"]]


def test_the_daemon_serves_it(tmp_path) -> None:
    handle = load_model_handle(str(MODEL_DIR), "openvino", 1, "bfloat16")
    service = build_service(config_from_dict({"sources": []}), handle)
    inference = service.health()["inference"]
    assert (inference["runtime"], inference["precision"]) == ("openvino", "bfloat16")
    assert inference["runs_on"].startswith("OpenVINO CPU") and \
        inference["chosen_by"] == "configured"


def test_bad_settings_and_files_are_clear_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ArtifactError, match="OpenVINO runs float32 or bfloat16"):
        load_model(MODEL_DIR, "openvino", precision="float16")
    with pytest.raises(ConfigError, match="OpenVINO runs float32 or bfloat16"):
        config_from_dict({"inference": {"runtime": "openvino", "precision": "float16"}})
    folder = tmp_path / "genred-default"
    shutil.copytree(MODEL_DIR, folder)
    (folder / "model.tflite").write_bytes(b"TFL3 not a flatbuffer")
    with pytest.raises(ArtifactError, match="OpenVINO cannot load it"):
        load_model(folder, "openvino")
    monkeypatch.setattr(openvino_runtime, "openvino_available", lambda: False)
    with pytest.raises(ArtifactError, match=r"OpenVINO is not installed \(pip install"):
        load_model(MODEL_DIR, "openvino")


def test_runtime_auto_measures_it(monkeypatch) -> None:
    """A candidate beside LiteRT (all cores and one thread), bfloat16 where the CPU has it."""
    monkeypatch.setattr(runtime_choice.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(runtime_choice, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    found = runtime_choice.candidates(MODEL_DIR)
    names = [c.name for c in found]
    assert {"openvino float32", "openvino bfloat16", "openvino bfloat16 1 thread"} <= set(names)
    monkeypatch.setattr(runtime_choice, "cpu_flags", lambda: {"avx2"})
    found = runtime_choice.candidates(MODEL_DIR)
    assert [c for c in found if c.runtime == "openvino"] == [
        Candidate("openvino", "float32"), Candidate("openvino", "float32", 1)]
    assert runtime_choice.fallback([Candidate("openvino", "float32")], "x").runtime == \
        "openvino"
