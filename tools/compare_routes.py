"""Compare the BFFT routes on identical k-fold splits of a dataset build (by clip).

The baseline (softmax regression on per-row mean/std of the BFFT image) is computed here.
The VGG16-BFFT route is trained with `genred train --folds K --fold I` (fold metrics read
from the artifacts' metrics.json). Both use training.splits.folds(rows, K, seed): identical
folds. Clip-level folds share artists: the default model's routes are compared on
artist-held-out folds by tools/compare_heads.py instead.

Usage: python -m tools.compare_routes DATA_DIR AUDIO_DIR [--folds 5] [--vgg-models DIR]
       [--vgg-artifact DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

from models.bfft import brg_lookup_table
from training.linear import fit_softmax
from training.manifest import genres_of, read_manifest
from training.splits import folds

_CODES = brg_lookup_table().astype(np.int64) @ np.array([65536, 256, 1])
_ORDER = np.argsort(_CODES)


def image_levels(image: np.ndarray) -> np.ndarray:
    """Invert the brg colormap: uint8 RGB image -> levels 0..255."""
    codes = image.astype(np.int64) @ np.array([65536, 256, 1])
    return _ORDER[np.searchsorted(_CODES[_ORDER], codes)]


def baseline_features(data_dir: Path, rows: list) -> np.ndarray:
    """Per-row mean and standard deviation of the BFFT levels (448 features per image)."""
    features = []
    for row in rows:
        levels = image_levels(np.asarray(Image.open(data_dir / row.png))).astype(np.float64)
        features.append(np.concatenate([levels.mean(axis=1), levels.std(axis=1)]))
    return np.array(features)


def evaluate_linear(features: np.ndarray, labels: np.ndarray, parts: list[np.ndarray],
                    n_classes: int, l2: float) -> dict:
    """k-fold accuracy and per-genre recall of softmax regression (train on the other folds)."""
    accuracies, predicted = [], np.zeros_like(labels)
    for test in parts:
        train = np.setdiff1d(np.arange(labels.size), test)
        model = fit_softmax(features[train], labels[train], n_classes, l2=l2)
        guess = model.predict_proba(features[test]).argmax(axis=1)
        predicted[test] = guess
        accuracies.append(float(np.mean(guess == labels[test])))
    recall = [float(np.mean(predicted[labels == c] == c)) for c in range(n_classes)]
    return {"fold_accuracy": accuracies, "mean": float(np.mean(accuracies)),
            "std": float(np.std(accuracies)), "recall": recall}


def vgg_fold_metrics(models_dir: Path, k: int) -> dict | None:
    """Test accuracy of each fold's VGG16 artifact (vgg16-fold{I}/metrics.json)."""
    accuracies, matrix = [], 0
    for fold in range(k):
        path = models_dir / f"vgg16-fold{fold}" / "metrics.json"
        if not path.is_file():
            return None
        metrics = json.loads(path.read_text())[f"fold{fold}of{k}-test"]
        accuracies.append(float(metrics["accuracy"]))
        matrix = matrix + np.array(metrics["confusion_matrix"])
    recall = (np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)).tolist()
    return {"fold_accuracy": accuracies, "mean": float(np.mean(accuracies)),
            "std": float(np.std(accuracies)), "recall": recall}


def seconds_per_window(model_dir: Path, repeats: int = 5) -> float:
    """Median seconds of one window's inference (features excluded) with the artifact."""
    from models.loader import load_artifact

    loaded = load_artifact(model_dir)
    batch = np.zeros((1, *loaded.contract.input_shape), dtype=np.float32)
    loaded.predict(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        loaded.predict(batch)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def folder_megabytes(folder: Path) -> float:
    """Size of the model files of an artifact in MB."""
    names = ("model.keras", "model.json", "weights.f16.npz")
    return sum((folder / n).stat().st_size for n in names if (folder / n).is_file()) / 1e6


def markdown_table(results: dict) -> str:
    """The comparison as a markdown table."""
    genres = results["genres"]
    lines = ["| route | k-fold accuracy (mean ± std) | per-fold | "
             + " | ".join(g[:5] for g in genres) + " | s/window | MB |",
             "|---" * (5 + len(genres)) + "|"]
    for name, entry in results["routes"].items():
        recall = entry.get("recall") or [float("nan")] * len(genres)
        lines.append(
            f"| {name} | {entry['mean']:.3f} ± {entry['std']:.3f} | "
            + ", ".join(f"{a:.2f}" for a in entry["fold_accuracy"]) + " | "
            + " | ".join(f"{r:.1f}" for r in recall)
            + f" | {entry.get('seconds_per_window', float('nan')):.3f}"
            + f" | {entry.get('megabytes', float('nan')):.1f} |")
    return "\n".join(lines)


def main() -> None:
    """Print a JSON comparison of the routes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("audio_dir", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vgg-models", type=Path, help="folder with vgg16-fold{I} artifacts")
    parser.add_argument("--vgg-artifact", type=Path, help="a VGG16 artifact (timing, size)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    rows = read_manifest(args.data_dir)
    genres = genres_of(rows)
    labels = np.array([genres.index(r.genre) for r in rows])
    parts = folds(rows, args.folds, args.seed)
    routes: dict[str, dict] = {}
    results = {"genres": genres, "folds": [[rows[i].stem for i in p] for p in parts],
               "routes": routes}
    if args.vgg_models:
        routes["1. VGG16-BFFT from scratch"] = vgg_fold_metrics(args.vgg_models, args.folds)
        if args.vgg_artifact:
            routes["1. VGG16-BFFT from scratch"].update(
                seconds_per_window=seconds_per_window(args.vgg_artifact),
                megabytes=folder_megabytes(args.vgg_artifact))
    started = time.perf_counter()
    base = baseline_features(args.data_dir, rows)
    routes["2. baseline: softmax regression on BFFT row mean/std"] = {
        **evaluate_linear(base, labels, parts, len(genres), l2=1.0),
        "seconds_per_window": (time.perf_counter() - started) / len(rows), "megabytes": 0.0}
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(markdown_table(results))  # noqa: T201 - the tool's output


if __name__ == "__main__":
    main()
