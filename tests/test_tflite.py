"""TFLite export + predictor round trip on the tiny CNN; the daemon's runtime option."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from daemon.config import ConfigError, config_from_dict

pytestmark = pytest.mark.tf

LABELS = ["blues", "classical", "jazz"]


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    """A random tiny-cnn artifact."""
    from models import tiny
    from models.artifact import contract_for, save_artifact

    model = tiny.build_tiny_cnn(LABELS)
    contract = contract_for("test-tiny", tiny.MODEL_KIND, LABELS, tiny.IMAGE_SHAPE)
    return save_artifact(model, tmp_path_factory.mktemp("tflite") / "tiny", contract)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)


@pytest.mark.parametrize(("quantize", "tolerance"), [("none", 1e-5), ("int8", 0.05)])
def test_export_round_trip(tiny_artifact, images, tmp_path, quantize, tolerance):
    from daemon.runner import load_model_handle
    from models.contract import read_contract
    from models.export import export_tflite
    from models.loader import load_artifact
    from models.tflite_runtime import TFLITE_FILE

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_artifact, folder)
    path = export_tflite(folder, quantize=quantize)
    assert path == folder / TFLITE_FILE and path.stat().st_size > 1000
    note = read_contract(folder).extra["tflite"]
    assert note["file"] == TFLITE_FILE and note["quantize"] == quantize
    expected = load_artifact(folder).predict(images)
    handle = load_model_handle(str(folder), runtime="tflite", num_threads=1)
    assert list(handle.labels) == LABELS
    for batch in (images, images[:1], images):  # resizing between batch sizes
        got = np.stack([r.outputs for r in handle.serving.predict(batch)])
        assert got.shape == (len(batch), len(LABELS)) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected[: len(batch)], atol=tolerance)


def test_missing_export_and_contract_mismatch_refused(tiny_artifact, tmp_path):
    from daemon.runner import StartupError, load_model_handle
    from models.export import export_tflite

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_artifact, folder)
    with pytest.raises(StartupError, match="no TFLite export"):
        load_model_handle(str(folder), runtime="tflite")
    export_tflite(folder)
    contract = json.loads((folder / "contract.json").read_text())
    contract["frontend"]["params"]["fft_length"] = 4096
    (folder / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(StartupError, match="fft_length: model has 4096"):
        load_model_handle(str(folder), runtime="tflite")


def test_export_command(tiny_artifact, tmp_path, capsys):
    from daemon.cli import main

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_artifact, folder)
    assert main(["export", str(folder), "--format", "tflite", "--quantize", "float16"]) == 0
    assert capsys.readouterr().out.strip().endswith("model.tflite")
    assert main(["export", str(tmp_path / "nothing")]) == 2


def test_runtime_config():
    assert config_from_dict({}).inference.runtime == "auto"
    config = config_from_dict({"inference": {"runtime": "tflite", "num_threads": 2}})
    assert config.inference.runtime == "tflite" and config.inference.num_threads == 2
    with pytest.raises(ConfigError, match=r"inference\.runtime: must be one of"):
        config_from_dict({"inference": {"runtime": "onnx"}})
    with pytest.raises(ConfigError, match=r"inference\.num_threads: must be in"):
        config_from_dict({"inference": {"num_threads": 0}})
