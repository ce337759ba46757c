"""numpy metrics, fold summary and the confusion / chord figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.metrics import (
    classification_metrics,
    confusion_matrix,
    per_label_scores,
    summarize_folds,
    vote,
)
from training.plots import chord_png, confusion_png, history_png

LABELS = ["a", "b", "c"]


def test_confusion_and_scores_match_hand_counts():
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(true, predicted, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = per_label_scores(matrix, LABELS)
    assert scores["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                           "f1": pytest.approx(0.8), "support": 3}
    assert scores["c"]["precision"] == 0.5 and scores["c"]["recall"] == 1.0


def test_vote_majority_and_tie_break_by_mean_probability():
    assert vote(np.array([[0.6, 0.4, 0], [0.6, 0.4, 0], [0, 0.1, 0.9]])) == 0
    assert vote(np.array([[0.51, 0.49, 0], [0.0, 0.99, 0.01]])) == 1


def test_classification_metrics_song_vote():
    probabilities = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.7, 0.3, 0], [0, 0.2, 0.8]])
    metrics = classification_metrics(np.array([0, 0, 0, 2]), probabilities, LABELS,
                                     ["s1", "s1", "s1", "s2"])
    assert metrics["accuracy"] == 0.75 and metrics["song_accuracy"] == 1.0
    assert metrics["n_songs"] == 2 and metrics["confusion_matrix"][0] == [2, 1, 0]


def test_summarize_folds_mean_and_std():
    folds = [{"accuracy": 0.8, "song_accuracy": 0.9, "macro_f1": 0.7,
              "per_genre": {"a": {"f1": 0.5}}},
             {"accuracy": 0.6, "song_accuracy": 0.7, "macro_f1": 0.5,
              "per_genre": {"a": {"f1": 0.7}}}]
    summary = summarize_folds(folds)
    assert summary["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["accuracy"]["std"] == pytest.approx(0.1)
    assert summary["per_genre_f1"]["a"]["mean"] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        summarize_folds([])


def test_figures_are_written(tmp_path):
    matrix = np.array([[5, 2, 0], [1, 6, 3], [0, 0, 9]])
    for path in (confusion_png(matrix, LABELS, tmp_path / "c.png", "t"),
                 chord_png(matrix, LABELS, tmp_path / "d.png", "t"),
                 chord_png(np.diag([3, 3, 3]), LABELS, tmp_path / "e.png", "t"),
                 history_png({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7],
                              "accuracy": [0.4, 0.8]}, tmp_path / "h.png")):
        with Image.open(path) as image:
            assert image.width > 300
    assert not list(tmp_path.glob(".*"))
