"""Training-time options of the patch head: per-collection balance, mixup, directions.

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


def collection_label_masks(targets: np.ndarray, groups: np.ndarray,
                           n_outputs: int) -> np.ndarray:
    """(n, n_outputs) 1/0: the outputs each sample's softmax is trained over, i.e. the genres
    its own collection holds plus the non-music outputs (non-music samples: every output).

    Collections that hold disjoint genres (Emotify: pop, rock, classical; TAFFC: blues,
    country, ...) then never teach "this production is not that genre": a TAFFC country clip
    does not push pop and rock down, so Emotify's pop is not learnt as "not country" either.
    """
    non_music = np.unique(targets[groups < 0])
    masks = np.ones((targets.size, n_outputs), np.float32)
    for group in np.unique(groups[groups >= 0]):
        allowed = np.zeros(n_outputs, np.float32)
        allowed[np.unique(targets[groups == group])] = 1.0
        allowed[non_music] = 1.0
        masks[groups == group] = allowed
    return masks


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


def collection_directions(standardised: np.ndarray, targets: np.ndarray, groups: np.ndarray,
                          max_directions: int, min_samples: int = 5) -> np.ndarray:
    """(n_features, r) orthonormal directions spanning how collections differ *within* a
    genre (differences of per-(collection, genre) means over every pair of collections
    holding the genre): a recording era or production, not a genre mix."""
    differences = []
    for target in np.unique(targets):
        held = [g for g in np.unique(groups[(targets == target) & (groups >= 0)])
                if np.sum((targets == target) & (groups == g)) >= min_samples]
        means = [standardised[(targets == target) & (groups == g)].mean(axis=0) for g in held]
        differences += [means[a] - means[b] for a in range(len(means))
                        for b in range(a + 1, len(means))]
    if not differences:
        return np.zeros((standardised.shape[1], 0), np.float32)
    _, singular, basis = np.linalg.svd(np.stack(differences), full_matrices=False)
    keep = min(max_directions, int(np.sum(singular > 1e-6 * singular[0])))
    return basis[:keep].T.astype(np.float32)


def remove_directions(rows: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``rows`` (n, n_features) with their components along ``directions`` removed."""
    return (rows - (rows @ directions) @ directions.T).astype(np.float32)
