"""Classification metrics in numpy: confusion matrix, precision/recall/F1, song votes, folds."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts (n_labels, n_labels): row = true label, column = predicted label."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, int), np.asarray(predicted, int)), 1)
    return matrix


def per_label_scores(matrix: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (0 where undefined)."""
    hits = np.diag(matrix).astype(float)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)}


def vote(probabilities: np.ndarray) -> int:
    """Majority label of slice predictions; a tie goes to the higher mean probability."""
    probabilities = np.asarray(probabilities, dtype=float)
    votes = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    tied = np.flatnonzero(votes == votes.max())
    means = probabilities.mean(axis=0)
    return int(tied[np.argmax(means[tied])])


def song_votes(groups: list[str], true: np.ndarray,
               probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, voted) label per song, songs identified by ``groups`` (one per slice)."""
    by_song: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_song[group].append(index)
    songs = sorted(by_song)
    song_true = np.array([true[by_song[s][0]] for s in songs], dtype=int)
    song_voted = np.array([vote(probabilities[by_song[s]]) for s in songs], dtype=int)
    return song_true, song_voted


def classification_metrics(true: np.ndarray, probabilities: np.ndarray, labels: list[str],
                           songs: list[str]) -> dict:
    """Accuracy, per-genre scores, confusion matrix and song-vote accuracy of a split."""
    true = np.asarray(true, dtype=int)
    predicted = np.asarray(probabilities).argmax(axis=1)
    matrix = confusion_matrix(true, predicted, len(labels))
    per_genre = per_label_scores(matrix, labels)
    present = [s for s in per_genre.values() if s["support"] > 0]
    song_true, song_voted = song_votes(songs, true, np.asarray(probabilities))
    return {
        "n_slices": int(true.size),
        "n_songs": int(song_true.size),
        "accuracy": float(np.mean(predicted == true)) if true.size else 0.0,
        "macro_f1": float(np.mean([s["f1"] for s in present])) if present else 0.0,
        "song_accuracy": float(np.mean(song_true == song_voted)) if song_true.size else 0.0,
        "per_genre": per_genre,
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def summarize_folds(fold_metrics: list[dict]) -> dict:
    """Mean and standard deviation across folds of accuracy, song accuracy and F1 scores."""
    if not fold_metrics:
        raise ValueError("no fold metrics to summarise")
    summary: dict = {"n_folds": len(fold_metrics)}
    for key in ("accuracy", "song_accuracy", "macro_f1"):
        values = np.array([m[key] for m in fold_metrics], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=0)),
                        "values": values.tolist()}
    genres = sorted({g for m in fold_metrics for g in m.get("per_genre", {})})
    summary["per_genre_f1"] = {}
    for genre in genres:
        values = np.array([m["per_genre"][genre]["f1"] for m in fold_metrics
                           if genre in m.get("per_genre", {})], dtype=float)
        summary["per_genre_f1"][genre] = {"mean": float(values.mean()),
                                          "std": float(values.std(ddof=0))}
    return summary
