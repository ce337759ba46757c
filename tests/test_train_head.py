"""`genred train-head` on a few real excerpts: artifact, contract, streaming form, no music."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import scipy.special

from training.cli import main

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def small_head(tmp_path_factory, request):
    """A patch head trained in seconds: 2 genres x 4 excerpts, speech + synthetic no-music."""
    shared = request.getfixturevalue("shared_data")
    tmp = tmp_path_factory.mktemp("head")
    for genre in ("classical", "metal"):
        (tmp / "music" / genre).mkdir(parents=True)
        for clip in sorted((shared / "gtzan-excerpts" / genre).glob("*.flac"))[::10][:4]:
            (tmp / "music" / genre / clip.name).symlink_to(clip)
    speech = sorted((shared / "nonmusic").glob("*.ogg"))[0]
    code = main(["train-head", str(tmp / "music"), "--nonmusic", str(speech), "--name", "small",
                 "--models-dir", str(tmp / "models"), "--work-dir", str(tmp / "work"),
                 "--views", "1", "--epochs", "3", "--folds", "2", "--hidden", "8"])
    assert code == 0
    return tmp


@pytest.fixture(scope="module")
def shared_data():
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def test_contract_records_encoders_pooling_head_and_folds(small_head):
    contract = json.loads((small_head / "models" / "small" / "contract.json").read_text())
    assert contract["model_kind"] == "musicnn-patch-head"
    assert contract["frontend"]["name"] == "musicnn-mel"
    assert contract["labels"] == ["classical", "metal"]
    head = contract["head"]
    assert head["encoders"][0]["network"] == "MSD_musicnn"
    assert head["n_features"] == 200 + 753 + 753 + 50
    assert head["no_music_output"] is True and head["head"] == "mlp-8"
    assert head["members"] == [{"training_views": [0]}, {"training_views": "all"}]
    assert 0.05 <= head["temperature"] <= 20
    assert "clip ids" in contract["training"]["folds"]
    metrics = json.loads((small_head / "models" / "small" / "metrics.json").read_text())
    cv = metrics["artist_cv2"]
    assert len(cv["folds"]) == 2 and "channel_summary" in cv
    assert set(cv["summary"]["recall"]) == {"classical", "metal"}
    assert (small_head / "models" / "small" / "confusion_artist_cv2.png").is_file()


def test_window_model_is_patch_encoder_then_head_then_mean(small_head):
    from models.loader import load_artifact
    from models.musicnn.features import window_patches
    from models.patch_head import stage_models

    loaded = load_artifact(small_head / "models" / "small")
    assert loaded.contract.n_outputs == 3
    rng = np.random.default_rng(0)
    patches = window_patches(0.1 * rng.standard_normal(1_322_944).astype(np.float32))[None]
    outputs = loaded.predict_outputs(patches)
    assert outputs.shape == (1, 3)
    encoder, head, temperature = stage_models(loaded.model)
    logits = head.predict_on_batch(encoder.predict_on_batch(patches[0]))
    expected = scipy.special.softmax(logits.mean(axis=0) / temperature)
    np.testing.assert_allclose(outputs[0], expected, atol=1e-5)
    genres = loaded.predict(patches)
    assert genres.shape == (1, 2) and genres.sum() == pytest.approx(1.0, abs=1e-5)


def test_classify_says_silent_for_digital_silence(small_head, capsys):
    silence = small_head / "silence.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono",
                    "-t", "65", str(silence)], check=True)
    capsys.readouterr()
    assert main(["classify", str(small_head / "models" / "small"), str(silence), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["genre"] is None and result["outcome"] == "silent"
    assert [s["outcome"] for s in result["slices"]] == ["silent"] * result["n_slices"]
    assert result["n_slices"] == 2


def test_bad_encoders_and_missing_folders_are_clear_errors(tmp_path, capsys):
    assert main(["train-head", str(tmp_path / "nowhere"), "--name", "x"]) == 2
    assert "no audio files" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    assert main(["train-head", str(tmp_path), "--name", "x", "--encoders", "VGG:tags"]) == 2
    assert "--encoders" in capsys.readouterr().err
