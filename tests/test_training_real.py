"""Real GTZAN clips (../shared/data/gtzan-mini): build, train a tiny model, classify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main

pytestmark = pytest.mark.tf
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
GTZAN = SHARED_DATA / "gtzan-mini"


@pytest.mark.skipif(not GTZAN.is_dir(), reason="no shared GTZAN clips")
def test_real_clips_build_train_classify(tmp_path, capsys):
    audio = tmp_path / "audio"
    for genre in ("classical", "metal"):
        (audio / genre).mkdir(parents=True)
        for clip in sorted((GTZAN / genre).glob("*.flac"))[:3]:
            (audio / genre / clip.name).symlink_to(clip)
    assert main(["dataset", "build", str(audio), str(tmp_path / "data"), "--workers", "2"]) == 0
    assert main(["train", str(tmp_path / "data"), "--name", "real", "--model-kind", "tiny-cnn",
                 "--weights", "none", "--epochs", "2", "--batch-size", "4",
                 "--models-dir", str(tmp_path / "models"),
                 "--runs-dir", str(tmp_path / "runs")]) == 0
    files = [str(sorted((GTZAN / genre).glob("*.flac"))[5]) for genre in ("classical", "metal")]
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "models" / "real"), *files, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["n_slices"] for r in results] == [1, 1]
    assert all(r["genre"] in ("classical", "metal") for r in results)
    assert all(abs(sum(r["mean_probabilities"].values()) - 1) < 1e-3 for r in results)
