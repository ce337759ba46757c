"""The whole chain on synthetic genres: dataset build -> train -> evaluate -> classify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.contract import read_contract
from models.loader import load_artifact
from tests.training_synth import SYNTH_GENRES, synth_clip, write_synth_dataset, write_wav
from training.cli import main

pytestmark = pytest.mark.tf
TRAIN_ARGS = ["--model-kind", "tiny-cnn", "--weights", "none", "--epochs", "10",
              "--batch-size", "8", "--learning-rate", "3e-3", "--patience", "4"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Synthetic audio (10 clips per genre) built into a dataset."""
    root = tmp_path_factory.mktemp("chain")
    write_synth_dataset(root / "audio", clips_per_genre=10)
    assert main(["dataset", "build", str(root / "audio"), str(root / "data"),
                 "--workers", "2"]) == 0
    return root


@pytest.fixture(scope="module")
def trained(workspace) -> Path:
    """A tiny CNN trained on the synthetic dataset; returns its artifact folder."""
    code = main(["train", str(workspace / "data"), "--name", "synth", "--models-dir",
                 str(workspace / "models"), "--runs-dir", str(workspace / "runs"), *TRAIN_ARGS])
    assert code == 0
    return workspace / "models" / "synth"


def test_train_writes_artifact_logs_and_contract(trained, workspace):
    contract = read_contract(trained)
    training = contract.training
    assert contract.model_kind == "tiny-cnn" and list(contract.labels) == list(SYNTH_GENRES)
    assert training["slices"]["train"] + training["slices"]["test"] + \
        training["slices"]["valid"] == training["n_songs"] == 30
    assert training["augmentation"] == {"shift": 0.1, "zoom": 0.1, "rotation": 0.02}
    assert training["seconds_per_training_image"] > 0 and training["backend"] == "tensorflow"
    assert contract.metrics["test_accuracy"] >= 0.8
    for name in ("history.csv", "best.weights.h5", "history.png"):
        assert (workspace / "runs" / "synth" / name).is_file()
    model = load_artifact(trained).model
    assert not any(layer.name.startswith("augment") for layer in model.layers)


def test_evaluate_writes_metrics_figures_and_contract(trained, workspace, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(trained), str(workspace / "data"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] >= 0.8 and metrics["song_accuracy"] >= 0.8
    assert set(metrics["per_genre"]) == set(SYNTH_GENRES)
    assert main(["evaluate", str(trained), str(workspace / "data"), "--split", "all"]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    stored = json.loads((trained / "metrics.json").read_text())
    assert set(stored) == {"test", "all"}
    assert read_contract(trained).metrics["all_accuracy"] == stored["all"]["accuracy"]
    for name in ("confusion_test.png", "chords_test.png", "chords_all.png"):
        assert (trained / name).is_file()


def test_classify_held_out_songs(trained, workspace, capsys):
    held = workspace / "held"
    write_synth_dataset(held, clips_per_genre=3, seed=7)
    files = sorted(str(p) for p in held.rglob("*.wav"))
    long_song = write_wav(held / "long.wav", synth_clip("hihat", 125.0, 99))
    capsys.readouterr()
    assert main(["classify", str(trained), *files, str(long_song), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    hits = [r["genre"] == Path(r["file"]).parent.name for r in results[:-1]]
    assert sum(hits) / len(hits) >= 0.8
    assert [s["start_seconds"] for s in results[-1]["slices"]] == [30.0, 59.999]
    assert results[-1]["genre"] == "hihat"


def test_classify_bad_file_fails_alone(trained, workspace, capsys):
    fake = workspace / "fake.wav"
    fake.write_text("not audio")
    short = write_wav(workspace / "short.wav", synth_clip("drone", 8.0, 5))
    capsys.readouterr()
    assert main(["classify", str(trained), str(fake), str(short)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("error:") == 1 and "fake.wav" in captured.err
    assert "short.wav: drone" in captured.out


def test_kfold_training_and_folds_summary(workspace, capsys):
    folders = []
    for fold in (0, 1):
        name = f"fold{fold}"
        assert main(["train", str(workspace / "data"), "--name", name, "--models-dir",
                     str(workspace / "models"), "--runs-dir", str(workspace / "runs"),
                     "--folds", "3", "--fold", str(fold), "--steps-per-epoch", "2",
                     *TRAIN_ARGS[:4], "--epochs", "2"]) == 0
        folders.append(workspace / "models" / name)
        assert main(["evaluate", str(folders[-1]), str(workspace / "data")]) == 0
        assert read_contract(folders[-1]).training["slices"]["test"] == 10
    capsys.readouterr()
    assert main(["evaluate", "--folds-summary", *map(str, folders)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_folds"] == 2 and "std" in summary["accuracy"]


def test_imagenet_offline_fails_before_loading_data(tmp_path, monkeypatch, capsys):
    import models.vgg16

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(models.vgg16, "_can_reach", lambda *args, **kwargs: False)
    code = main(["train", str(tmp_path / "missing-data"), "--name", "x", "--weights",
                 "imagenet", "--models-dir", str(tmp_path / "m")])
    assert code == 2
    assert "ImageNet weights are not cached" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_bad_model_folder_and_split_inputs(workspace, tmp_path, capsys):
    (tmp_path / "nocontract").mkdir()
    assert main(["evaluate", str(tmp_path / "nocontract"), str(workspace / "data")]) == 2
    assert "no contract.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["evaluate", str(tmp_path), str(workspace / "data"), "--split", "bogus"])
    assert raised.value.code == 2
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "holdout.txt").write_text("drone.00000\n")
    code = main(["train", str(workspace / "data"), "--name", "bad", "--split-dir",
                 str(tmp_path / "splits"), "--models-dir", str(tmp_path / "models"),
                 *TRAIN_ARGS])
    assert code == 2 and "unknown split file" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
