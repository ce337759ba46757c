"""The real VGG16 model kind trains one step on two images and saves a loadable artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models.loader import load_artifact
from training.cli import main
from training.manifest import SliceRow, write_manifest

pytestmark = pytest.mark.tf


def test_vgg16_one_step_on_two_images(tmp_path, capsys):
    data = tmp_path / "data"
    rows = []
    for index, genre in enumerate(("a", "b")):
        (data / genre).mkdir(parents=True)
        pixels = np.random.default_rng(index).integers(0, 256, (224, 224, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / genre / f"{genre}.s00.png")
        rows.append(SliceRow(f"{genre}/{genre}.s00.png", genre, f"{genre}/{genre}.wav", 0, 0.0))
    write_manifest(data, rows)
    code = main(["train", str(data), "--name", "vgg", "--model-kind", "vgg16-bfft",
                 "--weights", "none", "--epochs", "1", "--batch-size", "2",
                 "--steps-per-epoch", "1", "--models-dir", str(tmp_path / "models"),
                 "--runs-dir", str(tmp_path / "runs")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_run"] == 1 and summary["seconds_per_training_image"] > 0
    loaded = load_artifact(tmp_path / "models" / "vgg")
    assert loaded.contract.model_kind == "vgg16-bfft"
    probabilities = loaded.predict(np.zeros((1, 224, 224, 3), dtype=np.uint8))
    assert probabilities.shape == (1, 2) and np.isclose(probabilities.sum(), 1.0, atol=1e-4)
