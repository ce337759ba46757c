"""Artist-held-out folds, fold metrics and calibration of the patch head."""

from __future__ import annotations

import numpy as np
import pytest

from training.patch_head import expected_calibration_error, fit_temperature
from training.yardstick import artist_folds, item_metrics, summarise


def test_id_blocks_never_split_an_id_run_and_cover_every_genre():
    labels = ["blues"] * 51 + ["rock"] * 51
    ids = list(range(51)) * 2
    plan = artist_folds(labels, ids, 5)
    assert plan.ids_per_block == 11
    for fold in range(5):
        held = sorted({ids[i] for i in np.flatnonzero(plan.fold_of_item == fold)})
        assert held == list(range(11 * fold, min(11 * fold + 11, 51)))
        assert {labels[i] for i in np.flatnonzero(plan.fold_of_item == fold)} == {"blues", "rock"}


def test_files_without_ids_are_dealt_per_label():
    plan = artist_folds(["no_music"] * 5 + ["jazz"] * 2, [None] * 7, 2)
    assert plan.fold_of_item.tolist() == [0, 1, 0, 1, 0, 0, 1]
    assert plan.describe() == "2 folds by file"
    with pytest.raises(ValueError, match="at least 2"):
        artist_folds(["a"], [1], 1)


def test_item_metrics_count_no_music_apart_from_genres():
    genres, outputs = ["jazz", "rock"], ["jazz", "rock", "no_music"]
    true = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 2, 1, 0, 2, 0])
    result = item_metrics(true, predicted, outputs, genres)
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["recall"] == {"jazz": 0.5, "rock": 0.5}
    assert result["music_called_no_music"] == pytest.approx(0.25)
    assert result["no_music_recall"] == pytest.approx(0.5)
    summary = summarise([result, item_metrics(true, true, outputs, genres)], genres)
    assert summary["accuracy_mean"] == pytest.approx(0.75)
    assert summary["accuracy_std"] == pytest.approx(0.25)
    assert summary["min_recall"] == pytest.approx(0.75)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, 4000)
    true_logits = rng.normal(size=(4000, 4))
    true_logits[np.arange(4000), targets] += 1.5
    # sample labels from softmax(true_logits), then make the logits 3x overconfident
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    sampled = np.array([rng.choice(4, p=row) for row in p])
    temperature = fit_temperature(3.0 * true_logits, sampled)
    assert temperature == pytest.approx(3.0, rel=0.1)
    scaled = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    over = np.exp(3 * true_logits) / np.exp(3 * true_logits).sum(1, keepdims=True)
    assert expected_calibration_error(scaled, sampled) < expected_calibration_error(over, sampled)


@pytest.mark.tf
def test_fitted_head_has_no_optimizer_state_and_keeps_what_it_learned():
    from training.patch_head import HeadSettings, fit_head

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 600)
    features = (rng.normal(size=(600, 12)) + 4.0 * np.eye(3, 12)[targets] * 3 + 50).astype(
        np.float32)
    views = np.arange(600) % 2
    head = fit_head(features, targets, views, 3,
                    HeadSettings(hidden_units=16, epochs=20, member_views=((0,), None)))
    assert all(getattr(layer, "optimizer", None) is None for layer in head.layers)
    accuracy = np.mean(head.predict(features, verbose=0).argmax(1) == targets)
    assert accuracy > 0.95
