"""Fit a patch head on musicnn patch features; judge it on held-out artists.

Every 3-s patch is a training sample (so 2-3 s excerpts count), seen clean and through
random listening channels; a window's prediction is the mean of its patches' logits.
Cross-validation holds out blocks of GTZAN clip ids (training.yardstick); its
out-of-fold window logits also fit the calibration temperature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

from training.head_recipe import (
    balanced_weights,
    collection_directions,
    collection_label_masks,
    mixup_across,
    remove_directions,
)
from training.yardstick import NON_MUSIC_COLLECTION, artist_folds, item_metrics, summarise

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchData:
    """Patch features of every item in every view."""

    features: np.ndarray
    """(n_patches, n_features) float32."""
    item: np.ndarray
    """(n_patches,) index of the item each patch belongs to."""
    view: np.ndarray
    """(n_patches,) 0 = clean, k > 0 = the k-th random listening channel."""
    target: np.ndarray
    """(n_items,) output index of each item (genres, then no_music)."""
    clip_ids: list[int | None]
    labels: list[str]
    """(n_items,) label text of each item."""
    artists: list[str | None] | None = None
    """(n_items,) artist of each item where its folder's metadata names one."""
    collections: list[str] | None = None
    """(n_items,) collection of each item (training.collection_yardstick)."""


@dataclass(frozen=True)
class HeadSettings:
    """How the patch head is built and fitted."""

    hidden_units: int = 256
    """0: a linear (softmax regression) head."""
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    l2: float = 1e-3
    seed: int = 0
    member_views: tuple[tuple[int, ...] | None, ...] = ((0,), None)
    """One head per entry, trained on those views (None: every view); their logits are
    averaged. The default pairs a clean-audio head with a listening-channel one."""
    balance_collections: bool = False
    """Split each output's weight equally between the collections that hold it."""
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    """> 0: every epoch, mix each music patch with one of another collection."""
    collection_directions: int = 0
    """> 0: at most this many directions along which collections differ within a genre
    are projected out of the standardised features (folded into the first layer)."""
    own_genres_only: bool = False
    """Train each sample's softmax only over its own collection's genres (and no music)."""


def fit_head(features: np.ndarray, targets: np.ndarray, views: np.ndarray, n_outputs: int,
             settings: HeadSettings, groups: np.ndarray | None = None):
    """A trained patch head (keras.Model: features -> logits averaged over its members);
    ``groups``: each sample's collection index (-1 non-music), for the collection options."""
    from models.patch_head import average_heads

    groups = np.zeros(views.size, int) if groups is None else groups
    members = []
    for index, member_views in enumerate(settings.member_views):
        chosen = np.ones(views.size, bool) if member_views is None else np.isin(views,
                                                                                 member_views)
        members.append(_fit_member(features[chosen], targets[chosen], groups[chosen],
                                   n_outputs, settings, settings.seed + index))
    return average_heads(members)


def collection_codes(data: PatchData) -> np.ndarray:
    """(n_items,) collection index of each item, -1 for non-music (0 without collections)."""
    if data.collections is None:
        return np.zeros(len(data.labels), int)
    names = list(dict.fromkeys(data.collections))
    return np.array([-1 if c == NON_MUSIC_COLLECTION else names.index(c)
                     for c in data.collections])


def _fit_member(features: np.ndarray, targets: np.ndarray, groups: np.ndarray,
                n_outputs: int, settings: HeadSettings, seed: int):
    """One member head, trained with class-balanced weights (and the collection options)."""
    import keras

    from models.patch_head import build_patch_head

    keras.utils.set_random_seed(seed)
    name = f"member_{seed - settings.seed}"

    def build(mean: np.ndarray, variance: np.ndarray) -> keras.Model:
        return build_patch_head(mean, variance, n_outputs, hidden_units=settings.hidden_units,
                                l2=settings.l2, name=name)

    mean, variance = features.mean(axis=0), features.var(axis=0) + 1e-6
    directions = np.zeros((features.shape[1], 0), np.float32)
    if settings.collection_directions:
        scale = np.sqrt(variance)
        directions = collection_directions((features - mean) / scale, targets, groups,
                                           settings.collection_directions)
        features = mean + scale * remove_directions((features - mean) / scale, directions)
    head = build(mean, variance)
    weights = balanced_weights(targets, n_outputs,
                               groups if settings.balance_collections else None)
    if settings.own_genres_only:
        _fit_masked(head, features, targets, weights, groups, n_outputs, settings)
    elif settings.label_smoothing or settings.mixup_alpha:
        _fit_soft(head, features, targets, weights, groups, n_outputs, settings, seed)
    else:
        head.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        head.fit(features, targets, sample_weight=weights, batch_size=settings.batch_size,
                 epochs=settings.epochs, shuffle=True, verbose=0)
    fitted = build(mean, variance)  # the same head without optimizer state
    fitted.set_weights(head.get_weights())
    if directions.shape[1]:  # the projection folded into the first dense layer: no cost
        first = fitted.get_layer("hidden" if settings.hidden_units else "logits")
        kernel, bias = first.get_weights()
        first.set_weights([remove_directions(kernel.T, directions).T, bias])
    return fitted


def _fit_soft(head, features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
              groups: np.ndarray, n_outputs: int, settings: HeadSettings, seed: int) -> None:
    """Fit on one-hot targets with label smoothing and/or mixup across collections."""
    import keras

    head.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                 loss=keras.losses.CategoricalCrossentropy(
                     from_logits=True, label_smoothing=settings.label_smoothing))
    onehot = np.eye(n_outputs, dtype=np.float32)[targets]
    if not settings.mixup_alpha or np.unique(groups[groups >= 0]).size < 2:
        head.fit(features, onehot, sample_weight=weights, batch_size=settings.batch_size,
                 epochs=settings.epochs, shuffle=True, verbose=0)
        return
    rng = np.random.default_rng(seed)
    for _ in range(settings.epochs):
        mixed = mixup_across(features, onehot, weights, groups, settings.mixup_alpha, rng)
        head.fit(mixed[0], mixed[1], sample_weight=mixed[2], batch_size=settings.batch_size,
                 epochs=1, shuffle=True, verbose=0)


def _fit_masked(head, features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                groups: np.ndarray, n_outputs: int, settings: HeadSettings) -> None:
    """Fit with each sample's softmax over the outputs of collection_label_masks only."""
    import keras

    def masked_cross_entropy(y_true, logits):
        onehot, mask = y_true[:, :n_outputs], y_true[:, n_outputs:]
        return keras.losses.categorical_crossentropy(
            onehot, logits + (mask - 1.0) * 1e4, from_logits=True)

    head.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                 loss=masked_cross_entropy)
    y = np.concatenate([np.eye(n_outputs, dtype=np.float32)[targets],
                        collection_label_masks(targets, groups, n_outputs)], axis=1)
    head.fit(features, y, sample_weight=weights, batch_size=settings.batch_size,
             epochs=settings.epochs, shuffle=True, verbose=0)


def item_logits(head, data: PatchData, items: np.ndarray, view: int = 0) -> np.ndarray:
    """(len(items), n_outputs) mean patch logits of ``items`` in ``view``."""
    chosen = np.isin(data.item, items) & (data.view == view)
    logits = np.asarray(head.predict(data.features[chosen], verbose=0, batch_size=1024))
    owners = data.item[chosen]
    return np.stack([logits[owners == i].mean(axis=0) for i in items])


def cross_validate(data: PatchData, outputs: list[str], genres: list[str], k: int,
                   settings: HeadSettings, extra_tests: dict[str, int] | None = None) -> dict:
    """Artist-held-out folds: metrics per fold, summary, out-of-fold clean logits.

    Tests are the clean view and, where they exist, view 1 (a random listening channel)
    and each of ``extra_tests`` (name -> view, e.g. {'quiet': 4}) of the held-out items.
    """
    plan = artist_folds(data.labels, data.clip_ids, k, data.artists)
    out_of_fold = np.zeros((len(data.labels), len(outputs)), dtype=np.float32)
    channel_logits = np.zeros_like(out_of_fold)
    extra_tests = extra_tests or {}
    clean, channel = [], []
    extra: dict[str, list[dict]] = {name: [] for name in extra_tests}
    for fold in range(k):
        test = np.flatnonzero(plan.fold_of_item == fold)
        train = np.isin(data.item, test, invert=True)
        head = fit_head(data.features[train], data.target[data.item[train]], data.view[train],
                        len(outputs), settings, collection_codes(data)[data.item[train]])
        out_of_fold[test] = item_logits(head, data, test)
        clean.append(item_metrics(data.target[test], out_of_fold[test].argmax(1), outputs,
                                  genres))
        if data.view.max() > 0 and 1 not in extra_tests.values():
            channel_logits[test] = item_logits(head, data, test, view=1)
            channel.append(item_metrics(data.target[test], channel_logits[test].argmax(1),
                                        outputs, genres))
        for name, view in extra_tests.items():
            extra[name].append(item_metrics(data.target[test], item_logits(
                head, data, test, view=view).argmax(1), outputs, genres))
        _LOGGER.info("fold %d/%d: %d test items, accuracy %.3f", fold + 1, k, test.size,
                     clean[-1]["accuracy"])
    result = {"plan": plan.describe(), "folds": clean, "summary": summarise(clean, genres),
              "out_of_fold_logits": out_of_fold}
    if channel:
        result["channel_summary"] = summarise(channel, genres)
    for name, results in extra.items():
        result[f"{name}_summary"] = summarise(results, genres)
    if data.collections is not None and len(set(data.collections) - {NON_MUSIC_COLLECTION}) > 1:
        result["by_collection"] = by_collection(data, out_of_fold, outputs, genres)
    return result


def by_collection(data: PatchData, out_of_fold: np.ndarray, outputs: list[str],
                  genres: list[str]) -> dict[str, dict]:
    """The artist-held-out figures of each music collection's items apart (macro recall,
    worst genre): pooled accuracy hides a collection whose labels the others do not share."""
    of_item = np.array(data.collections)
    figures = {}
    for name in dict.fromkeys(c for c in data.collections if c != NON_MUSIC_COLLECTION):
        items = np.flatnonzero(of_item == name)
        metrics = item_metrics(data.target[items], out_of_fold[items].argmax(1), outputs, genres)
        recall = {g: r for g, r in metrics["recall"].items() if not np.isnan(r)}
        worst = min(recall, key=lambda g: recall[g])
        figures[name] = {"n_items": metrics["n_items"], "accuracy": metrics["accuracy"],
                         "recall": recall, "macro_recall": float(np.mean(list(recall.values()))),
                         "worst_genre": worst, "worst_recall": recall[worst]}
    return figures


def format_by_collection(figures: dict[str, dict]) -> list[str]:
    """Log lines: each collection's artist-held-out macro recall, worst genre, recalls."""
    return [f"artist-held-out, {name} items: macro {f['macro_recall']:.3f}, worst "
            f"{f['worst_genre']} {f['worst_recall']:.2f} ("
            + ", ".join(f"{g} {r:.2f}" for g, r in f["recall"].items()) + ")"
            for name, f in figures.items()]


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of softmax(logits / T)."""
    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        log_p = scaled - scipy.special.logsumexp(scaled, axis=1, keepdims=True)
        return float(-np.mean(log_p[np.arange(targets.size), targets]))

    result = scipy.optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)),
                                            method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray,
                               n_bins: int = 10) -> float:
    """Mean |confidence - accuracy| over confidence bins, weighted by bin size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return float(sum(abs(confidence[bins == b].mean() - correct[bins == b].mean())
                     * np.mean(bins == b) for b in range(n_bins) if np.any(bins == b)))
