"""``genred train``: fit a model kind on a dataset's slice PNGs and save a model artifact."""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from models.registry import MODEL_KINDS, trainable_kinds
from training.errors import InputError
from training.manifest import SliceRow, genres_of, read_manifest
from training.splits import ID_BLOCKS_PREFIX

_LOGGER = logging.getLogger(__name__)

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_options(args: argparse.Namespace) -> None:
    """Validate option values (cheap checks, before any loading)."""
    if not _NAME_PATTERN.match(args.name):
        raise InputError(f"--name {args.name!r}: use letters, digits, '.', '_' or '-'")
    for option in ("epochs", "batch_size", "patience"):
        if getattr(args, option) < (0 if option == "patience" else 1):
            raise InputError(f"--{option.replace('_', '-')} must be positive")
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise InputError("--steps-per-epoch must be >= 1")
    if not args.learning_rate > 0:
        raise InputError("--learning-rate must be > 0")
    for option in ("shift", "zoom", "rotation"):
        if not 0 <= getattr(args, option) < 1:
            raise InputError(f"--{option} must be in [0, 1) (0 disables it)")


def check_weights(model_kind: str, weights: str) -> None:
    """Fail early: ImageNet weights offline, ImageNet for a kind without them, missing file."""
    if weights == "imagenet":
        if not MODEL_KINDS[model_kind].imagenet_weights:
            with_imagenet = [k.name for k in MODEL_KINDS.values() if k.imagenet_weights]
            raise InputError(f"--weights imagenet is only for {', '.join(with_imagenet)}, "
                             f"not {model_kind}")
        from models.vgg16 import ensure_imagenet_weights

        ensure_imagenet_weights()
    elif weights != "none" and not Path(weights).is_file():
        raise InputError(f"--weights: file not found: {weights}")


def _artists_setting(artists: str | None) -> str | None:
    """--artists as recorded: id-blocks:N as is, a CSV as an absolute path."""
    if not artists or artists.startswith(ID_BLOCKS_PREFIX):
        return artists
    return str(Path(artists).resolve())


def split_settings(args: argparse.Namespace) -> dict:
    """Split settings recorded in the contract (evaluate recomputes the split from them)."""
    return {"seed": args.seed,
            "split_dir": str(Path(args.split_dir).resolve()) if args.split_dir else None,
            "artists": _artists_setting(args.artists),
            "folds": args.folds, "fold": args.fold}


def load_splits(data_dir: Path, settings: dict) -> tuple[list[SliceRow], dict[str, list]]:
    """Manifest rows and the rows of each split; an empty training split is an error."""
    from training.splits import choose_split, describe

    rows = read_manifest(data_dir)
    if len(genres_of(rows)) < 2:
        raise InputError(f"{data_dir}: need at least 2 genres, found {genres_of(rows)}")
    split = choose_split(rows, settings)
    for name, counts in describe(rows, split).items():
        _LOGGER.info("%s split: %d slices of %d songs", name, counts["slices"], counts["songs"])
    parts = {name: [rows[i] for i in indices] for name, indices in split.items()}
    if not parts.get("train"):
        raise InputError("the training split is empty (too few songs for this split)")
    return rows, parts


def run(args: argparse.Namespace) -> int:
    """Handler of ``genred train``."""
    check_options(args)
    check_weights(args.model_kind, args.weights)
    data_dir = Path(args.data_dir)
    settings = split_settings(args)
    rows, parts = load_splits(data_dir, settings)
    from training import fit

    result = fit.train_and_save(args, data_dir, rows, parts, settings)
    print(json.dumps(result, indent=2))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` on an argparse subparsers object."""
    parser = subparsers.add_parser("train", help="train a genre model on a built dataset",
                                   description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder made by 'dataset build'")
    parser.add_argument("--name", required=True, help="model name (folder under --models-dir)")
    parser.add_argument("--models-dir", default="models", help="where the artifact goes")
    parser.add_argument("--runs-dir", default="runs", help="checkpoints and logs go here")
    parser.add_argument("--model-kind", default="vgg16-bfft", choices=trainable_kinds())
    parser.add_argument("--weights", default="imagenet", help="imagenet, none, or a file")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    for option, default in (("shift", 0.1), ("zoom", 0.1), ("rotation", 0.02)):
        parser.add_argument(f"--{option}", type=float, default=default,
                            help=f"augmentation factor (default {default}; 0 disables)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=5, help="early-stopping epochs")
    parser.add_argument("--split-dir", help="folder with train.txt/test.txt/valid.txt stems")
    parser.add_argument("--artists", help="group splits by artist: a CSV 'source stem,artist', "
                        "or id-blocks:N for GTZAN-style names (blocks of N clip ids)")
    parser.add_argument("--folds", type=int, help="k-fold: number of folds K")
    parser.add_argument("--fold", type=int, help="k-fold: held-out fold index I (0-based)")
    parser.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: all)")
    parser.add_argument("--data-parallel", type=int, metavar="N",
                        help="train data-parallel on N GPUs (tf.distribute.MirroredStrategy), "
                             "or N logical CPU devices without enough GPUs; --batch-size is "
                             "the global batch, split across them")
    parser.set_defaults(handler=run)
    return parser
