"""Screen feature subsets and training sets with linear heads, on both yardsticks at once.

A softmax regression per fold, fitted by L-BFGS in NumPy (seconds, not minutes), on the
patch features `genred train-head` caches. For each route it prints two figures that can
disagree: leave-one-collection-out over the collections held out whole (training never
saw their artists *or* their production), and artist-held-out folds over every collection,
reported per collection (the collection's production is in training, its artists are not).

    D=../shared/data; python -m tools.linear_screen $D/gtzan-mini $D/gtzan-excerpts \\
        $D/emotify-share $D/taffc-share --nonmusic $D/nonmusic \\
        --nonmusic $D/cc-music/pibble.hq.ogg --json bench/results/linear_screen.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.special

from training.collection_yardstick import NON_MUSIC_COLLECTION, held_out_parts, pooled
from training.head import DEFAULT_ENCODERS, parse_encoders
from training.head_data import cache_key, collect_items, embed_items
from training.head_recipe import balanced_weights, collection_label_masks
from training.patch_head import by_collection, collection_codes
from training.yardstick import artist_folds, item_metrics

_LOGGER = logging.getLogger("linear_screen")
FEATURE_SLICES = {"penultimate": slice(0, 200), "mean_pool": slice(200, 953),
                  "max_pool": slice(953, 1706), "tags": slice(1706, 1756)}
"""Columns of each MSD_musicnn output in the default encoders' 1,756 features."""
ROUTES = {  # name -> (features, train on the id collection + non-music only?, own genres?)
    "all features, GTZAN only": ("all", True, False),
    "all features, all collections": ("all", False, False),
    "all features, all collections, own genres": ("all", False, True),
    "tags only, GTZAN only": ("tags", True, False),
    "tags only, all collections, own genres": ("tags", False, True),
    "penultimate, GTZAN only": ("penultimate", True, False),
    "pools (mean + max), GTZAN only": ("mean_pool+max_pool", True, False),
}


def select(features: np.ndarray, kind: str) -> np.ndarray:
    """The chosen columns; tag probabilities as log-odds."""
    if kind == "all":
        return features
    parts = []
    for name in kind.split("+"):
        part = features[:, FEATURE_SLICES[name]]
        parts.append(scipy.special.logit(np.clip(part, 1e-6, 1 - 1e-6)) if name == "tags"
                     else part)
    return np.concatenate(parts, axis=1)


def fit_softmax(x: np.ndarray, targets: np.ndarray, weights: np.ndarray, masks: np.ndarray,
                l2: float):
    """Weighted (masked) softmax regression on standardised ``x``; returns x -> logits."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / scale
    n, p = x.shape
    k = masks.shape[1]
    onehot = np.eye(k)[targets]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        kernel, bias = theta[: p * k].reshape(p, k), theta[p * k:]
        logits = x @ kernel + bias + (masks - 1.0) * 1e4
        lse = scipy.special.logsumexp(logits, axis=1)
        grad = (np.exp(logits - lse[:, None]) - onehot) * weights[:, None] / n
        value = np.sum(weights * (lse - (logits * onehot).sum(1))) / n
        return (value + 0.5 * l2 * np.sum(kernel ** 2),
                np.concatenate([(x.T @ grad + l2 * kernel).ravel(), grad.sum(0)]))

    theta = scipy.optimize.minimize(loss, np.zeros(p * k + k), jac=True, method="L-BFGS-B",
                                    options={"maxiter": 500}).x
    return lambda rows: ((rows - mean) / scale) @ theta[: p * k].reshape(p, k) + theta[p * k:]


def fit_and_score(data, x: np.ndarray, train_items: np.ndarray, test: np.ndarray,
                  n_outputs: int, own: bool, l2: float) -> np.ndarray:
    """(len(test), n_outputs) clean-view mean patch logits of a head fitted on train_items."""
    codes = collection_codes(data)
    train = train_items[data.item] & (data.view <= 1)
    targets, groups = data.target[data.item[train]], codes[data.item[train]]
    masks = (collection_label_masks(targets, groups, n_outputs) if own
             else np.ones((targets.size, n_outputs)))
    head = fit_softmax(x[train], targets, balanced_weights(targets, n_outputs), masks, l2)
    chosen = np.isin(data.item, test) & (data.view == 0)
    logits, owners = head(x[chosen]), data.item[chosen]
    return np.stack([logits[owners == i].mean(axis=0) for i in test])


def screen_route(data, outputs: list[str], genres: list[str], kind: str, id_only: bool,
                 own: bool, l2: float, k: int) -> dict:
    """Both yardsticks for one route."""
    x, of_item = select(data.features, kind), np.array(data.collections)
    id_collections = {c for c, i in zip(data.collections, data.clip_ids, strict=True)
                      if i is not None} | {NON_MUSIC_COLLECTION}
    allowed = np.isin(of_item, list(id_collections)) if id_only else np.ones(of_item.size, bool)
    whole = []
    for part in held_out_parts(data.collections, data.clip_ids, k):
        if part.name == part.collection:
            train = allowed.copy()
            train[part.test] = False
            logits = fit_and_score(data, x, train, part.test, len(outputs), own, l2)
            whole.append(item_metrics(data.target[part.test], logits.argmax(1), outputs, genres))
    fold_of = artist_folds(data.labels, data.clip_ids, k, data.artists).fold_of_item
    out_of_fold = np.zeros((of_item.size, len(outputs)))
    for fold in range(k):
        test = np.flatnonzero(fold_of == fold)
        out_of_fold[test] = fit_and_score(data, x, allowed & (fold_of != fold), test,
                                          len(outputs), own, l2)
    return {"held_out_whole": pooled(whole, genres),
            "artist_held_out": by_collection(data, out_of_fold, outputs, genres)}


def main(argv: list[str] | None = None) -> int:
    """Run every route on the cached features; log each; write --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("music_dirs", nargs="+")
    parser.add_argument("--nonmusic", action="append", default=[])
    parser.add_argument("--work-dir", default="runs/train-head")
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--routes", default="", help="comma-separated route numbers (1-based)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    encoders = parse_encoders(DEFAULT_ENCODERS)
    collections = collect_items(args.music_dirs, args.nonmusic, Path(args.work_dir), True, 0)
    outputs = collections.genres + (["no_music"] if collections.has_no_music else [])
    key = cache_key(encoders, 0, 30.0)
    data, _ = embed_items(collections, outputs, encoders, 1, Path(args.work_dir) / key, 0, 30.0)
    results = {}
    chosen = [int(n) - 1 for n in args.routes.split(",")] if args.routes else range(len(ROUTES))
    for name, (kind, id_only, own) in [list(ROUTES.items())[i] for i in chosen]:
        results[name] = screen_route(data, outputs, collections.genres, kind, id_only, own,
                                     args.l2, args.folds)
        whole = results[name]["held_out_whole"]
        _LOGGER.info("%s: held out whole macro %.3f (worst %s %.2f); artist-held-out %s", name,
                     whole["macro_recall"], whole["worst_genre"], whole["worst_recall"],
                     ", ".join(f"{c} {f['macro_recall']:.3f}"
                               for c, f in results[name]["artist_held_out"].items()))
        if args.json:
            args.json.write_text(json.dumps({"l2": args.l2, "routes": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
