"""Training-time options of the patch head: per-collection class balance and mixup.

``groups`` gives each training sample's collection as an index (-1: non-music, which is
never mixed). Both options exist to make a head hold on collections it has not heard.
"""

from __future__ import annotations

import numpy as np


def balanced_weights(targets: np.ndarray, n_outputs: int,
                     groups: np.ndarray | None = None) -> np.ndarray:
    """Per-sample weights: every output the same total weight; with ``groups``, that
    weight also split equally between the collections that hold the output."""
    cells = targets if groups is None else targets * (groups.max() + 2) + (groups + 1)
    _, cell_of, cell_counts = np.unique(cells, return_inverse=True, return_counts=True)
    collections_per_target = np.zeros(n_outputs)
    for target in np.unique(targets):
        collections_per_target[target] = np.unique(cells[targets == target]).size
    weights = 1.0 / (n_outputs * collections_per_target[targets] * cell_counts[cell_of])
    return (weights * targets.size).astype(np.float32)


def mixup_across(features: np.ndarray, onehot: np.ndarray, weights: np.ndarray,
                 groups: np.ndarray, alpha: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's samples: each music sample mixed with a music sample of another
    collection (its own share max(l, 1 - l), l ~ Beta(alpha, alpha)); non-music as is."""
    features, onehot, weights = features.copy(), onehot.copy(), weights.copy()
    music = np.flatnonzero(groups >= 0)
    partners = rng.permutation(music)
    for _ in range(3):  # re-draw partners that share the sample's collection
        same = groups[partners] == groups[music]
        if not same.any():
            break
        partners[same] = rng.choice(music, int(same.sum()))
    share = rng.beta(alpha, alpha, music.size)
    share = np.maximum(share, 1 - share).astype(np.float32)[:, np.newaxis]
    features[music] = share * features[music] + (1 - share) * features[partners]
    onehot[music] = share * onehot[music] + (1 - share) * onehot[partners]
    weights[music] = share[:, 0] * weights[music] + (1 - share[:, 0]) * weights[partners]
    return features, onehot, weights
