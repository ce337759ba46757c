"""`genred train-head` over two real collections: the leave-one-collection-out report."""

from __future__ import annotations

import json

import pytest

from training.cli import main

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory):
    """GTZAN excerpts (ids) and Emotify clips (artists in metadata.tsv): classical and pop."""
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "emotify-share").is_dir():
        pytest.skip("../shared/data/emotify-share is not present")
    tmp = tmp_path_factory.mktemp("collections")
    for genre in ("classical", "pop"):
        (tmp / "gtzan" / genre).mkdir(parents=True)
        for clip in sorted((SHARED_DATA / "gtzan-excerpts" / genre).glob("*.flac"))[::10][:4]:
            (tmp / "gtzan" / genre / clip.name).symlink_to(clip)
        (tmp / "emotify" / genre).mkdir(parents=True)
        for clip in sorted((SHARED_DATA / "emotify-share" / genre).glob("*.mp3"))[::12][:3]:
            (tmp / "emotify" / genre / clip.name).symlink_to(clip)
    (tmp / "emotify" / "metadata.tsv").symlink_to(SHARED_DATA / "emotify-share" / "metadata.tsv")
    code = main(["train-head", str(tmp / "gtzan"), str(tmp / "emotify"), "--no-synthetic",
                 "--name", "two", "--models-dir", str(tmp / "models"), "--work-dir",
                 str(tmp / "work"), "--views", "1", "--epochs", "3", "--folds", "2",
                 "--hidden", "8", "--max-seconds", "6", "--balance-collections",
                 "--narrow-views", "1"])
    assert code == 0
    return tmp / "models" / "two"


def test_each_collection_is_held_out_and_reported_per_genre(two_collections):
    metrics = json.loads((two_collections / "metrics.json").read_text())
    loco = metrics["leave_one_collection_out"]
    assert [p["collection"] for p in loco["parts"]] == ["gtzan"] * 2 + ["emotify"]
    assert loco["parts"][2]["n_items"] == 6 and loco["parts"][2]["part"] == "emotify"
    assert sum(p["n_items"] for p in loco["parts"][:2]) == 8
    assert set(loco["collections"]) == {"gtzan", "emotify"}
    pooled = loco["pooled"]
    assert set(pooled["recall"]) == {"classical", "pop"} and pooled["n_items"] == 14
    assert pooled["worst_genre"] in ("classical", "pop")
    assert pooled["worst_recall"] <= pooled["macro_recall"]
    contract = json.loads((two_collections / "contract.json").read_text())
    assert contract["metrics"]["collection_worst_genre"] == pooled["worst_genre"]
    assert contract["metrics"]["collections_held_out"] == ["gtzan", "emotify"]
    assert "id_blocks_accuracy_mean" in contract["metrics"]
    assert contract["training"]["balance_collections"] is True
    assert contract["head"]["members"][1] == {"training_views": [0, 1]}  # narrow: test only
    narrow = metrics["artist_cv2"]["narrow_summary"]
    assert set(narrow["recall"]) == {"classical", "pop"} and len(narrow["fold_accuracy"]) == 2
