"""`genred train-head`: the default model's recipe, a patch head on musicnn features.

MUSIC_DIR... are folders of ``<genre>/<file>`` audio (full clips or short excerpts); the
optional --nonmusic folder holds speech, animals, noise (label "no music", never a genre),
to which synthetic silence, hiss, hum and noise are added. Every 3-s patch of every file
is embedded clean and through --views random listening channels; artist-held-out folds
(training.yardstick) report accuracy with its spread and per genre, and fit the
calibration temperature; with two or more collections (folders; folders of GTZAN-style
ids are one), leave-one-collection-out parts (training.collection_yardstick) report
per-genre recall per held-out part and pooled, macro recall and the worst genre; then the
head is fitted on everything and the artifact written.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from training.collection_yardstick import (
    NON_MUSIC_COLLECTION,
    format_report,
    leave_one_collection_out,
)
from training.errors import InputError
from training.head_data import cache_key, collect_items, embed_items
from training.patch_head import (
    HeadSettings,
    collection_codes,
    cross_validate,
    expected_calibration_error,
    fit_head,
    fit_temperature,
    format_by_collection,
)
from training.yardstick import format_summary

_LOGGER = logging.getLogger(__name__)
DEFAULT_ENCODERS = "MSD_musicnn:penultimate+mean_pool+max_pool+tags"


def parse_encoders(text: str) -> list[dict]:
    """'NET:out+out,NET2:out' -> [{'network': NET, 'outputs': [...]}, ...]."""
    from models.musicnn.network import CHECKPOINTS, outputs_of

    encoders = []
    for part in text.split(","):
        network, _, outputs = part.partition(":")
        known = outputs_of(network) if network in CHECKPOINTS else ()
        names = outputs.split("+") if outputs else [known[1] if known else "penultimate"]
        if network not in CHECKPOINTS or not set(names) <= set(known):
            raise InputError(f"--encoders {part!r}: use NETWORK:OUTPUT+OUTPUT with a network "
                             f"in {CHECKPOINTS} and its outputs ({network}: "
                             f"{', '.join(known) or 'unknown network'})")
        encoders.append({"network": network, "outputs": names})
    return encoders


def _calibration(cv: dict, target: np.ndarray) -> dict:
    """Temperature from out-of-fold logits, with the calibration error before and after."""
    import scipy.special

    logits = cv.pop("out_of_fold_logits")
    temperature = fit_temperature(logits, target)
    before = expected_calibration_error(scipy.special.softmax(logits, axis=1), target)
    after = expected_calibration_error(scipy.special.softmax(logits / temperature, axis=1),
                                       target)
    return {"temperature": round(temperature, 4), "ece_before": round(before, 4),
            "ece_after": round(after, 4)}


def extra_test_views(args: argparse.Namespace) -> dict[str, int]:
    """Views the folds also test: the first quiet and the first narrow-band version."""
    tests = {}
    if args.quiet_views:
        tests["quiet"] = args.views + 1
    if args.narrow_views:
        tests["narrow"] = args.views + args.quiet_views + 1
    return tests


def collection_headline(loco: dict) -> dict:
    """The contract's leave-one-collection-out figures ({} with a single collection)."""
    if not loco["parts"]:
        return {}
    pooled = loco["pooled"]
    headline = {"collection_macro_recall": round(pooled["macro_recall"], 4),
                "collection_worst_genre": pooled["worst_genre"],
                "collection_worst_recall": round(pooled["worst_recall"], 4),
                "collections_held_out": list(loco["collections"])}
    if "id_blocks" in loco:
        headline["id_blocks_accuracy_mean"] = round(loco["id_blocks"]["accuracy_mean"], 4)
        headline["id_blocks_accuracy_std"] = round(loco["id_blocks"]["accuracy_std"], 4)
    return headline


def train_head(args: argparse.Namespace) -> Path:
    """Embed, cross-validate, calibrate, fit on everything, save; returns the folder."""
    from models.artifact import contract_for, save_artifact
    from models.musicnn import spec
    from models.patch_head import MODEL_KIND, NO_MUSIC, build_window_model
    from training.evaluate import store_metrics, write_figures

    started = time.monotonic()
    encoders = parse_encoders(args.encoders)
    collections = collect_items(args.music_dirs, args.nonmusic, Path(args.work_dir),
                                synthetic=not args.no_synthetic, seed=args.seed)
    genres = collections.genres
    outputs = genres + ([NO_MUSIC] if collections.has_no_music else [])
    key = cache_key(encoders, args.seed, args.max_seconds)
    data, encoder = embed_items(collections, outputs, encoders, args.views,
                                Path(args.work_dir) / key, args.seed, args.max_seconds,
                                args.quiet_views, args.narrow_views)
    quiet = tuple(range(args.views + 1, args.views + 1 + args.quiet_views))
    settings = HeadSettings(hidden_units=args.hidden, epochs=args.epochs, seed=args.seed,
                            member_views=((0, *quiet), tuple(range(args.views + 1)) + quiet
                                          if args.narrow_views and not args.train_narrow
                                          else None),
                            balance_collections=args.balance_collections,
                            label_smoothing=args.label_smoothing, mixup_alpha=args.mixup,
                            collection_directions=args.collection_directions,
                            own_genres_only=args.own_genres_only)
    cv = cross_validate(data, outputs, genres, args.folds, settings, extra_test_views(args))
    calibration = _calibration(cv, data.target)
    _LOGGER.info(format_summary("artist-held-out accuracy", cv["summary"]))
    for line in format_by_collection(cv.get("by_collection", {})):
        _LOGGER.info(line)
    loco = {"parts": []}
    if len(set(data.collections) - {NON_MUSIC_COLLECTION}) > 1:
        loco = leave_one_collection_out(data, outputs, genres, args.folds, settings)
        for line in format_report(loco):
            _LOGGER.info(line)
    else:
        _LOGGER.info("one collection: no leave-one-collection-out report")
    head = fit_head(data.features, data.target[data.item], data.view, len(outputs), settings,
                    collection_codes(data)[data.item])
    model = build_window_model(encoder, head, calibration["temperature"])
    head_section = {"encoders": encoders, "n_features": int(data.features.shape[1]),
                    "head": f"mlp-{args.hidden}" if args.hidden else "linear",
                    "members": [{"training_views": "all" if v is None else list(v)}
                                for v in settings.member_views],
                    "pooling": "mean of patch logits over the window's patches",
                    "temperature": calibration["temperature"],
                    "no_music_output": collections.has_no_music}
    contract = contract_for(
        args.name, MODEL_KIND, genres, spec.INPUT_SHAPE, frontend_name=spec.FRONTEND_NAME,
        head=head_section,
        training={**collections.describe(), "views": args.views,
                  "quiet_views": args.quiet_views, "narrow_views": args.narrow_views,
                  "train_narrow": args.train_narrow,
                  "seed": args.seed,
                  "epochs": args.epochs, "folds": cv["plan"],
                  "balance_collections": settings.balance_collections,
                  "label_smoothing": settings.label_smoothing, "mixup_alpha": settings.mixup_alpha,
                  "collection_directions": settings.collection_directions,
                  "own_genres_only": settings.own_genres_only,
                  "seconds": round(time.monotonic() - started, 1)},
        metrics={"artist_cv_accuracy_mean": round(cv["summary"]["accuracy_mean"], 4),
                 "artist_cv_accuracy_std": round(cv["summary"]["accuracy_std"], 4),
                 "artist_cv_min_recall": round(cv["summary"]["min_recall"], 4),
                 **collection_headline(loco), **calibration})
    folder = save_artifact(model, Path(args.models_dir) / args.name, contract)
    store_metrics(folder, f"artist_cv{args.folds}", {**cv, "calibration": calibration})
    if loco["parts"]:
        store_metrics(folder, "leave_one_collection_out", loco)
    write_figures(folder, f"artist_cv{args.folds}",
                  np.array(cv["summary"]["confusion_matrix"]), outputs)
    return folder


def run(args: argparse.Namespace) -> int:
    """Handler of `genred train-head`."""
    folder = train_head(args)
    print(f"wrote {folder}")  # noqa: T201 - command output
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `genred train-head`."""
    parser = subparsers.add_parser(
        "train-head", help="the default model: a patch head on musicnn features")
    parser.add_argument("music_dirs", metavar="MUSIC_DIR", nargs="+",
                        help="folder of <genre>/<audio file> (several are merged)")
    parser.add_argument("--nonmusic", action="append", default=[],
                        help="non-music audio (speech, animals, noise): a folder or a file; "
                             "may be repeated")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="do not add synthetic silence/noise/hum to the non-music class")
    parser.add_argument("--name", required=True, help="model name (folder under --models-dir)")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--work-dir", default="runs/train-head",
                        help="cache of patch features (reused by later runs)")
    parser.add_argument("--encoders", default=DEFAULT_ENCODERS,
                        help=f"musicnn networks and outputs (default {DEFAULT_ENCODERS})")
    parser.add_argument("--views", type=int, default=3,
                        help="random listening channels per file, besides the clean view")
    parser.add_argument("--quiet-views", type=int, default=0,
                        help="quiet versions per file (10-35 dB down, some faded in)")
    parser.add_argument("--narrow-views", type=int, default=0,
                        help="narrow-band (4 kHz, some phone-band) versions per file: tested "
                             "in the folds (a per-genre row); trained on with --train-narrow")
    parser.add_argument("--train-narrow", action="store_true",
                        help="the listening-channel member also trains on the narrow-band "
                             "versions (held-out items' versions are still only tested)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (0: linear head)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5,
                        help="artist-held-out folds (and clip-id blocks held out per collection)")
    parser.add_argument("--balance-collections", action="store_true",
                        help="split each genre's weight equally between its collections")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--collection-directions", type=int, default=0,
                        help="project out up to N directions along which collections differ "
                             "within a genre (0: off)")
    parser.add_argument("--own-genres-only", action="store_true",
                        help="train each clip's softmax over its own collection's genres only "
                             "(collections with disjoint genres do not teach production as genre)")
    parser.add_argument("--mixup", type=float, default=0.0,
                        help="mixup across collections: Beta(a, a) with this a (0: off)")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="use at most this much of each file")
    parser.add_argument("--seed", type=int, default=0)
    return parser
