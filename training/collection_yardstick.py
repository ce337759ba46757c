"""Leave one collection out: does a head trained on some collections hold on another?

A collection is a source of music with its own era, label and production (GTZAN, Emotify,
a user's folder). Held-out parts: each collection without clip ids is held out whole
(trained on every other collection); the collection with GTZAN-style clip ids (all folders
whose files carry ids, e.g. gtzan-mini + gtzan-excerpts) is held out by blocks of ids as
in ``training.yardstick`` (an artist proxy), trained on its other blocks plus every other
collection. Non-music is always on the training side. A held-out item is scored only when
its genre is on the training side. Results per part, per collection and pooled; routes are
chosen by the pooled worst genre, then the pooled macro recall.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from training.yardstick import NON_MUSIC_COLLECTION, item_metrics

_LOGGER = logging.getLogger(__name__)
"""Collection name of the non-music folders (never held out)."""


@dataclass(frozen=True)
class HeldOutPart:
    """One test set of the leave-one-collection-out yardstick."""

    name: str
    collection: str
    test: np.ndarray
    """Item indices held out (the training side is every other item)."""


def collection_names(folder_names: list[str], folder_has_ids: list[bool]) -> list[str]:
    """Collection of each folder: folders with clip ids form one collection, joined by '+'."""
    with_ids = "+".join(n for n, has in zip(folder_names, folder_has_ids, strict=True) if has)
    return [with_ids if has else name
            for name, has in zip(folder_names, folder_has_ids, strict=True)]


def held_out_parts(collections: list[str], clip_ids: list[int | None],
                   k: int) -> list[HeldOutPart]:
    """Each music collection whole, or by k clip-id blocks when its items carry ids."""
    names = list(dict.fromkeys(c for c in collections if c != NON_MUSIC_COLLECTION))
    of_item = np.array(collections)
    parts = []
    for name in names:
        members = np.flatnonzero(of_item == name)
        ids = [clip_ids[i] for i in members]
        if not ids or any(i is None for i in ids):
            if len(names) > 1:
                parts.append(HeldOutPart(name, name, members))
            continue
        block = math.ceil((max(ids) + 1) / k)
        for fold in range(k):
            test = members[np.minimum(np.array(ids) // block, k - 1) == fold]
            if test.size:
                parts.append(HeldOutPart(f"{name} ids {fold * block}-{fold * block + block - 1}",
                                         name, test))
    return parts


def score_part(part: HeldOutPart, logits: np.ndarray, targets: np.ndarray,
               trained_targets: set[int], outputs: list[str], genres: list[str]) -> dict:
    """Metrics of one part over its items whose genre the training side has."""
    scored = np.array([targets[i] in trained_targets for i in part.test], dtype=bool)
    result = item_metrics(targets[part.test][scored], logits[scored].argmax(1), outputs, genres)
    held_genres = {genres[t] for t in targets[part.test] if t < len(genres)}
    result.update(part=part.name, collection=part.collection,
                  unscored_genres=sorted(held_genres - {genres[t] for t in trained_targets
                                                        if t < len(genres)}))
    return result


def pooled(results: list[dict], genres: list[str]) -> dict:
    """Per-genre recall over the parts' summed confusions, macro recall, worst genre."""
    matrix = np.sum([np.array(r["confusion_matrix"]) for r in results], axis=0)
    recall = {g: float(matrix[i, i] / matrix[i].sum()) for i, g in enumerate(genres)
              if matrix[i].sum()}
    worst = min(recall, key=lambda g: recall[g]) if recall else None
    music = matrix[: len(genres)]
    return {"n_items": int(music.sum()),
            "accuracy": float(np.trace(matrix[: len(genres), : len(genres)]) / music.sum())
            if music.sum() else float("nan"),
            "recall": recall, "macro_recall": float(np.mean(list(recall.values())))
            if recall else float("nan"),
            "worst_genre": worst, "worst_recall": recall[worst] if worst else float("nan"),
            "confusion_matrix": matrix.tolist()}


def report(results: list[dict], genres: list[str]) -> dict:
    """Parts, each collection pooled over its parts, every part pooled, and the id
    collection's per-block accuracy (the artist-held-out figure beside the others)."""
    by_collection = {c: [r for r in results if r["collection"] == c]
                     for c in dict.fromkeys(r["collection"] for r in results)}
    out = {"parts": results, "collections": {c: pooled(rs, genres)
                                             for c, rs in by_collection.items()},
           "pooled": pooled(results, genres)}
    blocks = [rs for rs in by_collection.values() if len(rs) > 1]
    if blocks:
        accuracies = np.array([r["accuracy"] for r in blocks[0]])
        out["id_blocks"] = {"collection": blocks[0][0]["collection"],
                            "accuracy_mean": float(np.nanmean(accuracies)),
                            "accuracy_std": float(np.nanstd(accuracies))}
    return out


def leave_one_collection_out(data, outputs: list[str], genres: list[str], k: int,
                             settings, trainable: np.ndarray | None = None,
                             whole_only: bool = False) -> dict:
    """Fit a head per held-out part (on the other items, of those ``trainable``) and report.

    ``data`` is a ``training.patch_head.PatchData`` with ``collections``; tests use the
    clean view of the held-out items. ``whole_only``: only the collections held out whole
    (a quick screen that skips the id collection's blocks).
    """
    from training.patch_head import collection_codes, fit_head, item_logits

    codes = collection_codes(data)
    trainable = np.ones(len(data.labels), bool) if trainable is None else trainable
    results = []
    for part in held_out_parts(data.collections, data.clip_ids, k):
        if whole_only and part.name != part.collection:
            continue
        train_items = trainable.copy()
        train_items[part.test] = False
        train = train_items[data.item]
        head = fit_head(data.features[train], data.target[data.item[train]], data.view[train],
                        len(outputs), settings, codes[data.item[train]])
        trained_targets = set(np.unique(data.target[train_items]).tolist())
        logits = item_logits(head, data, part.test)
        results.append(score_part(part, logits, data.target, trained_targets, outputs, genres))
        _LOGGER.info("held out %s: %d items, accuracy %.3f", part.name, part.test.size,
                     results[-1]["accuracy"])
    return report(results, genres)


def format_report(result: dict) -> list[str]:
    """Log lines: pooled macro and worst genre, then each collection."""
    lines = []
    for name, summary in [("pooled", result["pooled"]), *result["collections"].items()]:
        recall = ", ".join(f"{g} {v:.2f}" for g, v in summary["recall"].items())
        lines.append(f"held out {name}: macro {summary['macro_recall']:.3f}, worst "
                     f"{summary['worst_genre']} {summary['worst_recall']:.2f} ({recall})")
    if "id_blocks" in result:
        blocks = result["id_blocks"]
        lines.append(f"{blocks['collection']} by id blocks (artist-held-out): "
                     f"{blocks['accuracy_mean']:.3f} +/- {blocks['accuracy_std']:.3f}")
    return lines
