"""``genred train --data-parallel 2``: the tiny model trained on 2 logical CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import make_tone_file
from training.cluster_harness import REPO_ROOT, child_env

pytestmark = pytest.mark.tf
RUN_TIMEOUT_SECONDS = 300


def genred(*args: str) -> subprocess.CompletedProcess:
    """``genred ARGS`` in a fresh process (TensorFlow devices are set up once per process)."""
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True,
                          text=True, env=child_env(), cwd=REPO_ROOT,
                          timeout=RUN_TIMEOUT_SECONDS, check=False)


def test_tiny_model_trains_data_parallel_on_two_cpu_devices(tmp_path, ffmpeg):
    for genre, base_hz in (("low", 110), ("high", 3000)):
        (tmp_path / "audio" / genre).mkdir(parents=True)
        for index in range(3):
            make_tone_file(tmp_path / "audio" / genre / f"{genre}.{index:05d}.wav",
                           base_hz * (1 + index / 10), 31.0, 22050)
    built = genred("dataset", "build", str(tmp_path / "audio"), str(tmp_path / "data"),
                   "--workers", "1")
    assert built.returncode == 0, built.stderr[-3000:]
    trained = genred("train", str(tmp_path / "data"), "--name", "dp", "--model-kind",
                     "tiny-cnn", "--weights", "none", "--epochs", "1", "--batch-size", "4",
                     "--data-parallel", "2", "--models-dir", str(tmp_path / "models"),
                     "--runs-dir", str(tmp_path / "runs"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    contract = json.loads((tmp_path / "models" / "dp" / "contract.json").read_text())
    assert contract["training"]["replicas"] == 2
    assert contract["training"]["epochs_run"] == 1
