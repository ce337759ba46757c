"""``genred evaluate``: metrics, confusion and chord figures of a model on a dataset split."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from training.errors import InputError
from training.manifest import SliceRow, genres_of, read_manifest
from training.metrics import classification_metrics, summarize_folds

METRICS_FILE = "metrics.json"
SPLIT_CHOICES = ("test", "valid", "train", "all")


def select_rows(rows: list[SliceRow], training: dict, split: str, folds: int | None = None,
                fold: int | None = None) -> list[SliceRow]:
    """Rows of ``split``, recomputed from the contract's split settings (or given folds)."""
    from training.splits import choose_split

    if split == "all":
        return rows
    settings = dict(training.get("split") or {"seed": training.get("seed", 0)})
    if folds is not None or fold is not None:
        settings.update(folds=folds, fold=fold, split_dir=None)
    indices = choose_split(rows, settings)[split]
    return [rows[i] for i in indices]


def evaluate(model_dir: Path, data_dir: Path, split: str = "test", folds: int | None = None,
             fold: int | None = None, batch_size: int = 16) -> tuple[str, dict]:
    """Evaluate an artifact on a split; writes figures and metrics; returns (tag, metrics)."""
    from models.loader import load_artifact
    from training.data import SliceImages, predict_probabilities

    loaded = load_artifact(model_dir)
    rows = read_manifest(data_dir)
    labels = list(loaded.labels)
    unknown = sorted(set(genres_of(rows)) - set(labels))
    if unknown:
        raise InputError(f"{data_dir}: genres {unknown} are not labels of the model {labels}")
    chosen = select_rows(rows, loaded.contract.training, split, folds, fold)
    if not chosen:
        raise InputError(f"the {split} split of {data_dir} is empty")
    data = SliceImages(data_dir, chosen, labels, batch_size, shape=loaded.contract.input_shape)
    probabilities = predict_probabilities(loaded.model, data)
    metrics = classification_metrics(data.targets, probabilities, labels,
                                     [row.source for row in chosen])
    tag = split if folds is None else f"fold{fold}of{folds}-{split}"
    metrics.update(split=split, dataset=str(data_dir.resolve()))
    matrix = np.array(metrics["confusion_matrix"])
    metrics["figures"] = write_figures(model_dir, tag, matrix, labels)
    store_metrics(model_dir, tag, metrics)
    return tag, metrics


def write_figures(model_dir: Path, tag: str, matrix: np.ndarray, labels: list[str]) -> list[str]:
    """Confusion-matrix and chord-diagram PNGs in the artifact folder (names of those made)."""
    from training.plots import chord_png, confusion_png

    made = [confusion_png(matrix, labels, model_dir / f"confusion_{tag}.png", tag),
            chord_png(matrix, labels, model_dir / f"chords_{tag}.png", tag)]
    return [path.name for path in made if path is not None]


def store_metrics(model_dir: Path, tag: str, metrics: dict) -> None:
    """Merge metrics into MODEL_DIR/metrics.json (atomic) and headline numbers into contract."""
    from models.contract import update_contract

    path = model_dir / METRICS_FILE
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    stored[tag] = metrics
    temporary = path.with_name(f".{METRICS_FILE}.{os.getpid()}.partial")
    temporary.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    headline = {f"{tag}_{key}": metrics[key] for key in
                ("accuracy", "song_accuracy", "macro_f1", "n_slices") if key in metrics}
    if headline:
        update_contract(model_dir, metrics=headline)


def format_table(tag: str, metrics: dict) -> str:
    """Readable report: headline numbers, per-genre scores, confusion matrix."""
    lines = [f"{tag}: {metrics['n_slices']} slices of {metrics['n_songs']} songs",
             f"accuracy {metrics['accuracy']:.3f}   song-vote accuracy "
             f"{metrics['song_accuracy']:.3f}   macro F1 {metrics['macro_f1']:.3f}", "",
             f"{'genre':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for genre, s in metrics["per_genre"].items():
        lines.append(f"{genre:<14}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}"
                     f"{s['support']:>9d}")
    labels = metrics["labels"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 14 + "".join(f"{label[:7]:>8}" for label in labels)]
    for label, counts in zip(labels, metrics["confusion_matrix"], strict=True):
        lines.append(f"{label:<14}" + "".join(f"{count:>8d}" for count in counts))
    return "\n".join(lines)


def _read_fold_metrics(paths: list[str], split: str) -> list[dict]:
    """The ``split`` metrics of each metrics.json (or artifact folder holding one)."""
    found = []
    for name in paths:
        path = Path(name) / METRICS_FILE if Path(name).is_dir() else Path(name)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read fold metrics {path}: {error}") from error
        entry = stored if "accuracy" in stored else stored.get(split)
        if not isinstance(entry, dict) or "accuracy" not in entry:
            raise InputError(f"{path}: no '{split}' metrics (run 'genred evaluate' first)")
        found.append(entry)
    return found


def run(args: argparse.Namespace) -> int:
    """Handler of ``genred evaluate``."""
    if args.folds_summary:
        summary = summarize_folds(_read_fold_metrics(args.folds_summary, args.split))
        print(json.dumps(summary, indent=2))
        return 0
    if not args.model_dir or not args.data_dir:
        raise InputError("evaluate needs MODEL_DIR and DATA_DIR (or --folds-summary FILE...)")
    tag, metrics = evaluate(Path(args.model_dir), Path(args.data_dir), args.split, args.folds,
                            args.fold, args.batch_size)
    print(json.dumps(metrics, indent=2) if args.json else format_table(tag, metrics))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on an argparse subparsers object."""
    parser = subparsers.add_parser("evaluate", help="metrics and figures of a trained model",
                                   description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("model_dir", metavar="MODEL_DIR", nargs="?", help="model artifact")
    parser.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help="built dataset")
    parser.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    parser.add_argument("--folds", type=int, help="evaluate fold I of K instead of the "
                        "training split settings")
    parser.add_argument("--fold", type=int, help="fold index I (0-based) with --folds")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--folds-summary", nargs="+", metavar="METRICS",
                        help="mean and std of several folds' metrics.json (or model folders)")
    parser.set_defaults(handler=run)
    return parser
