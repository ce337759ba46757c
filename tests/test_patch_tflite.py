"""The default model's TFLite runtime: its exported patch stage pooled == the Keras window model;
``auto`` picks it; ``genred classify`` runs on it without importing TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.contract import ArtifactError, read_contract
from models.loader import auto_runtime, load_model
from models.musicnn.streaming import stream_patches
from models.patch_tflite import PatchLogitsPredictor, pool_patch_logits
from models.tflite_runtime import litert_available
from tests.test_musicnn_streaming import music_like

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "models" / "genred-default"
needs_litert = pytest.mark.skipif(not litert_available(), reason="ai-edge-litert not installed")


def windows_of(seconds: float, seed: int) -> np.ndarray:
    """Consecutive 10-patch windows of a music-like signal."""
    patches = stream_patches(music_like(seconds, seed=seed))
    return np.stack([patches[k:k + 10] for k in range(0, patches.shape[0] - 9, 5)])


def copy_model(tmp_path: Path) -> Path:
    """A working copy of genred-default (its contract can be edited)."""
    folder = tmp_path / "genred-default"
    shutil.copytree(MODEL_DIR, folder, ignore=shutil.ignore_patterns("*.png"))
    return folder


def edit_contract(folder: Path, edit) -> None:
    """Apply ``edit`` to the folder's contract.json."""
    contract = json.loads((folder / "contract.json").read_text())
    edit(contract)
    (folder / "contract.json").write_text(json.dumps(contract))


def test_pooling_is_the_window_formula() -> None:
    logits = np.random.default_rng(0).normal(0, 3, (4, 10, 11)).astype(np.float32)
    expected = np.exp(logits.mean(axis=1) / 2.0)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pool_patch_logits(logits, 2.0), expected, rtol=1e-5)


@pytest.mark.tf
def test_tflite_windows_equal_the_keras_model() -> None:
    windows = windows_of(50.0, seed=5)
    keras_outputs = load_model(MODEL_DIR, "keras").predict_outputs(windows)
    loaded = load_model(MODEL_DIR, "tflite", num_threads=1)
    assert isinstance(loaded.predictor, PatchLogitsPredictor)
    for batch in (windows, windows[:1], windows):  # the stage resizes between batch sizes
        got = loaded.predict_outputs(batch)
        assert got.shape == (len(batch), 11) and got.dtype == np.float32
        np.testing.assert_allclose(got, keras_outputs[:len(batch)], atol=1e-4)
    np.testing.assert_allclose(loaded.predict(windows).sum(axis=1), 1.0, atol=1e-5)


@needs_litert
def test_auto_picks_the_export_and_keras_without_one_or_with_a_gpu(tmp_path: Path,
                                                                     monkeypatch) -> None:
    from models import loader

    monkeypatch.setattr(loader, "NVIDIA_DRIVER", tmp_path / "no-driver")
    assert load_model(MODEL_DIR, "auto").predictor.describe().startswith("TFLite CPU (LiteRT)")
    assert auto_runtime(read_contract(MODEL_DIR)) == "tflite"
    folder = copy_model(tmp_path)
    edit_contract(folder, lambda c: c.pop("extra", None))
    assert auto_runtime(read_contract(folder)) == "keras"
    driver = tmp_path / "version"
    driver.write_text("NVRM version: 550\n")
    monkeypatch.setattr(loader, "NVIDIA_DRIVER", driver)
    assert auto_runtime(read_contract(MODEL_DIR)) == "keras"


def test_stale_or_unknown_export_is_refused(tmp_path: Path) -> None:
    folder = copy_model(tmp_path)
    edit_contract(folder, lambda c: c["head"].update(temperature=2.5))
    with pytest.raises(ArtifactError, match="stale export"):
        load_model(folder, "tflite")
    edit_contract(folder, lambda c: c["extra"]["tflite"].update(stage="patch_embedding"))
    with pytest.raises(ArtifactError, match="unknown exported stage 'patch_embedding'"):
        load_model(folder, "tflite")
    (folder / "model.tflite").unlink()
    with pytest.raises(ArtifactError, match="model.tflite is missing"):
        load_model(folder, "tflite")


@pytest.mark.tf
def test_export_writes_the_patch_stage(tmp_path: Path) -> None:
    from models.export import export_tflite

    folder = copy_model(tmp_path)
    (folder / "model.tflite").unlink()
    edit_contract(folder, lambda c: c.pop("extra", None))
    export_tflite(folder, quantize="int8")
    note = json.loads((folder / "contract.json").read_text())["extra"]["tflite"]
    assert note["stage"] == "patch_logits" and note["quantize"] == "int8"
    head_temperature = json.loads((folder / "contract.json").read_text())["head"]["temperature"]
    assert note["temperature"] == pytest.approx(head_temperature)
    windows = windows_of(40.0, seed=6)
    keras_outputs = load_model(folder, "keras").predict_outputs(windows)
    int8_outputs = load_model(folder, "tflite").predict_outputs(windows)
    # int8 dynamic-range weights: within 0.15 of Keras per output on this ambiguous synthetic
    # signal (0.104 at most for the 2026-12-05 head); the float32 export is held to 1e-4
    np.testing.assert_allclose(int8_outputs, keras_outputs, atol=0.15)


@needs_litert
def test_the_daemon_serving_path_never_imports_tensorflow() -> None:
    """genred run's modules and its default model load (runtime auto) stay TensorFlow-free."""
    code = ("import json, sys\n"
            "from daemon.cli import build_parser\n"
            "import daemon.runner, daemon.service, daemon.mqtt, daemon.history, daemon.terminal\n"
            "from daemon.config import Config\n"
            "build_parser()\n"
            "model = daemon.runner.load_model_handle(Config().model, 'auto')\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules)\n"
            "print('HEAVY', json.dumps(heavy), model.name)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HEAVY [] genred-default"


@needs_litert
def test_classify_runs_without_tensorflow(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=65", "-ar", "22050", str(song)], check=True)
    code = ("import json, sys\nfrom daemon.cli import main\n"
            "rc = main(['classify', sys.argv[1], sys.argv[2], '--json', '--workers', '1'])\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules)\n"
            "print('HEAVY', json.dumps(heavy), rc, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, str(MODEL_DIR), str(song)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY [] 0" in done.stderr
    result = json.loads(done.stdout)[0]
    assert result["n_slices"] == 2 and result["outcome"] in ("music", "no music")
