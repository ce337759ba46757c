"""The honest yardstick: folds that hold out whole artists, judged per item and per genre.

GTZAN numbers its clips in runs by artist, so blocks of consecutive clip ids are a fair
proxy for artists: fold f tests every clip whose id falls in the f-th block (in every
genre and every collection at once: gtzan-mini's blues.00003 and an excerpt of
blues.00004 are in the same fold), and trains on the other blocks only. Files without a
GTZAN id are dealt to folds round-robin per label, by artist where the folder's
``metadata.tsv`` names one (an artist never on both sides), else by file (user folders,
the non-music set). Leave-one-collection-out parts: ``training.collection_yardstick``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from training.metrics import confusion_matrix

NON_MUSIC_COLLECTION = "no_music"
"""The collection name of non-music items (never held out, never scored as a genre)."""


@dataclass(frozen=True)
class FoldPlan:
    """Fold of every item and how the folds were made."""

    fold_of_item: np.ndarray
    k: int
    ids_per_block: int | None
    """Clip ids per held-out block (None: no item had an id)."""

    def describe(self) -> str:
        """One line for logs and model cards."""
        if self.ids_per_block is None:
            return f"{self.k} folds by file"
        return (f"{self.k} folds by blocks of {self.ids_per_block} consecutive clip ids "
                f"(artist proxy); files without an id dealt by file")


def artist_folds(labels: list[str], clip_ids: list[int | None], k: int,
                 artists: list[str | None] | None = None) -> FoldPlan:
    """Fold per item: by clip-id block where there is an id, else by artist (all of an
    artist's files in one fold) or, without an artist, by file; dealt round-robin per label."""
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    known = [i for i in clip_ids if i is not None]
    block = math.ceil((max(known) + 1) / k) if known else None
    artists = artists or [None] * len(labels)
    fold_of = np.zeros(len(labels), dtype=int)
    dealt: dict[str, int] = defaultdict(int)
    fold_of_artist: dict[str, int] = {}
    for index, (label, clip_id, artist) in enumerate(zip(labels, clip_ids, artists,
                                                         strict=True)):
        if clip_id is not None and block:
            fold_of[index] = min(clip_id // block, k - 1)
        elif artist is not None and artist in fold_of_artist:
            fold_of[index] = fold_of_artist[artist]
        else:
            fold_of[index] = dealt[label] % k
            dealt[label] += 1
            if artist is not None:
                fold_of_artist[artist] = int(fold_of[index])
    return FoldPlan(fold_of, k, block)


def item_metrics(true: np.ndarray, predicted: np.ndarray, outputs: list[str],
                 genres: list[str]) -> dict:
    """Accuracy over music items, per-genre recall, and the no-music outcome's rates."""
    music = np.isin(true, np.arange(len(genres)))
    matrix = confusion_matrix(true, predicted, len(outputs))
    recall = {g: float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else float("nan")
              for i, g in enumerate(genres)}
    result = {"n_items": int(music.sum()),
              "accuracy": float(np.mean(predicted[music] == true[music])) if music.any()
              else float("nan"),
              "recall": recall, "confusion_matrix": matrix.tolist(), "outputs": outputs}
    if len(outputs) > len(genres):
        no_music = len(genres)
        result["music_called_no_music"] = float(np.mean(predicted[music] == no_music))
        if (~music).any():
            result["no_music_recall"] = float(np.mean(predicted[~music] == no_music))
    return result


def summarise(fold_results: list[dict], genres: list[str]) -> dict:
    """Mean and spread over folds, and per-genre recall pooled over all folds."""
    accuracies = np.array([r["accuracy"] for r in fold_results])
    pooled = np.sum([np.array(r["confusion_matrix"]) for r in fold_results], axis=0)
    recall = {g: float(pooled[i, i] / pooled[i].sum()) if pooled[i].sum() else float("nan")
              for i, g in enumerate(genres)}
    summary = {"accuracy_mean": float(accuracies.mean()), "accuracy_std": float(accuracies.std()),
               "fold_accuracy": [round(float(a), 4) for a in accuracies],
               "recall": recall, "min_recall": float(np.nanmin(list(recall.values()))),
               "confusion_matrix": pooled.tolist()}
    for key in ("music_called_no_music", "no_music_recall"):
        values = [r[key] for r in fold_results if key in r]
        if values:
            summary[key] = float(np.mean(values))
    return summary


def format_summary(name: str, summary: dict) -> str:
    """A log line: accuracy mean +- std, folds, weakest genre."""
    recall = summary["recall"]
    weakest = min(recall, key=lambda g: recall[g])
    return (f"{name}: {summary['accuracy_mean']:.3f} +/- {summary['accuracy_std']:.3f} "
            f"(folds {', '.join(f'{a:.2f}' for a in summary['fold_accuracy'])}); "
            f"weakest {weakest} {recall[weakest]:.2f}")
