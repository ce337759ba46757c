"""`genred train-head`: a genre layer on the music-pretrained musicnn embedding.

Reads the slices of a `genred dataset build` (manifest: source file and start of each
30-s slice), embeds each slice's audio with musicnn (MSD, penultimate layer, mean over
its 10 patches), cross-validates softmax regression by song (k folds; the L2 penalty is
chosen by an inner cross-validation on each training part only), then fits on every slice
and writes a `musicnn-head` artifact whose contract names the musicnn-mel front-end.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.artifact import contract_for, save_artifact
from models.audio import load_audio
from models.musicnn import spec
from training.errors import InputError
from training.linear import choose_l2, fit_softmax
from training.manifest import SliceRow, genres_of, read_manifest
from training.metrics import classification_metrics, summarize_folds
from training.splits import folds

_LOGGER = logging.getLogger(__name__)
EMBEDDINGS_FILE = "embeddings-musicnn.npz"


def slice_embeddings(data_dir: Path, audio_dir: Path, rows: list[SliceRow]) -> np.ndarray:
    """Embedding per slice (cached in DATA_DIR/embeddings-musicnn.npz by png name)."""
    from models.musicnn_head import window_embeddings

    cache_path = data_dir / EMBEDDINGS_FILE
    cache = dict(np.load(cache_path)) if cache_path.is_file() else {}
    window = spec.PARAMS["window_samples"]
    by_source: dict[str, np.ndarray] = {}
    for row in tqdm(rows, desc="embedding", unit="slice"):
        if row.png in cache:
            continue
        if row.source not in by_source:
            by_source = {row.source: load_audio(audio_dir / row.source)}
        start = round(row.start_seconds * spec.PARAMS["input_rate_hz"])
        cache[row.png] = window_embeddings(by_source[row.source][start:start + window])
    np.savez(cache_path, **cache)
    return np.stack([cache[row.png] for row in rows])


def cross_validate(embeddings: np.ndarray, labels: np.ndarray, rows: list[SliceRow],
                   genres: list[str], k: int, seed: int) -> dict:
    """k-fold (by song) metrics of softmax regression with inner-CV L2."""
    fold_metrics, all_true, all_probabilities = [], [], []
    for test in folds(rows, k, seed):
        train = np.setdiff1d(np.arange(labels.size), test)
        l2 = choose_l2(embeddings[train], labels[train], len(genres), seed=seed)
        model = fit_softmax(embeddings[train], labels[train], len(genres), l2=l2)
        probabilities = model.predict_proba(embeddings[test])
        songs = [rows[i].source for i in test]
        fold_metrics.append({**classification_metrics(labels[test], probabilities, genres, songs),
                             "l2": l2})
        all_true.append(labels[test])
        all_probabilities.append(probabilities)
    pooled = classification_metrics(np.concatenate(all_true), np.concatenate(all_probabilities),
                                    genres, [r.source for r in rows])
    return {"summary": summarize_folds(fold_metrics), "pooled": pooled, "folds": fold_metrics}


def train_head(data_dir: Path, audio_dir: Path, name: str, models_dir: Path, k: int,
               seed: int) -> Path:
    """Cross-validate, fit on everything, save the artifact; returns its folder."""
    from models.musicnn_head import MODEL_KIND, build_head_model, fold_standardisation
    from training.evaluate import store_metrics, write_figures

    rows = read_manifest(data_dir)
    genres = genres_of(rows)
    if len(genres) < 2:
        raise InputError(f"{data_dir}: need at least 2 genres, found {genres}")
    labels = np.array([genres.index(r.genre) for r in rows])
    started = time.monotonic()
    embeddings = slice_embeddings(data_dir, audio_dir, rows)
    cv = cross_validate(embeddings, labels, rows, genres, k, seed)
    l2 = choose_l2(embeddings, labels, len(genres), seed=seed)
    final = fit_softmax(embeddings, labels, len(genres), l2=l2)
    weights, bias = fold_standardisation(final.mean, final.scale, final.weights, final.bias)
    summary = cv["summary"]
    contract = contract_for(
        name, MODEL_KIND, genres, spec.INPUT_SHAPE, frontend_name=spec.FRONTEND_NAME,
        training={"dataset": str(data_dir), "audio": str(audio_dir), "n_slices": len(rows),
                  "n_songs": len({r.source for r in rows}), "genres": genres, "seed": seed,
                  "folds": k, "l2": l2, "embedding": "MSD_musicnn penultimate (200-d)",
                  "seconds": round(time.monotonic() - started, 1)},
        metrics={"cv_accuracy_mean": summary["accuracy"]["mean"],
                 "cv_accuracy_std": summary["accuracy"]["std"]})
    folder = save_artifact(build_head_model(genres, weights, bias), models_dir / name, contract)
    store_metrics(folder, f"cv{k}", {**cv["pooled"], "folds": cv["summary"]})
    write_figures(folder, f"cv{k}", np.array(cv["pooled"]["confusion_matrix"]), genres)
    _LOGGER.info("%s: %d-fold accuracy %.3f +/- %.3f", name, k, summary["accuracy"]["mean"],
                 summary["accuracy"]["std"])
    return folder


def run(args: argparse.Namespace) -> int:
    """Handler of `genred train-head`."""
    folder = train_head(Path(args.data_dir), Path(args.audio_dir), args.name,
                        Path(args.models_dir), args.folds, args.seed)
    print(f"wrote {folder}")  # noqa: T201 - command output
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `genred train-head`."""
    parser = subparsers.add_parser("train-head", help="genre layer on musicnn embeddings")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder made by 'dataset build'")
    parser.add_argument("audio_dir", metavar="AUDIO_DIR", help="the audio folder it was built from")
    parser.add_argument("--name", required=True, help="model name (folder under --models-dir)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (by song)")
    parser.add_argument("--seed", type=int, default=0)
    return parser
