"""L2-regularised softmax regression (multinomial logistic regression) in numpy/scipy.

Used for the baseline route and for the small genre head on pretrained embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special


@dataclass(frozen=True)
class SoftmaxModel:
    """Standardisation plus a linear softmax layer."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    """(n_features, n_classes) weights on standardised features."""
    bias: np.ndarray

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes)."""
        logits = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return scipy.special.softmax(logits, axis=1)


def fit_softmax(features: np.ndarray, labels: np.ndarray, n_classes: int,
                l2: float = 1.0, max_iterations: int = 500) -> SoftmaxModel:
    """Fit by L-BFGS; ``l2`` is the penalty on the weights (not the bias)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    standardised = (features - mean) / scale
    n_samples, n_features = standardised.shape
    onehot = np.eye(n_classes)[labels]

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = flat[: n_features * n_classes].reshape(n_features, n_classes)
        bias = flat[n_features * n_classes :]
        logits = standardised @ weights + bias
        log_probabilities = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
        loss = -np.sum(onehot * log_probabilities) / n_samples + 0.5 * l2 * np.sum(weights**2)
        error = (np.exp(log_probabilities) - onehot) / n_samples
        gradient_w = standardised.T @ error + l2 * weights
        return loss, np.concatenate([gradient_w.ravel(), error.sum(axis=0)])

    start = np.zeros(n_features * n_classes + n_classes)
    result = scipy.optimize.minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iterations})
    weights = result.x[: n_features * n_classes].reshape(n_features, n_classes)
    return SoftmaxModel(mean, scale, weights, result.x[n_features * n_classes :])


def choose_l2(features: np.ndarray, labels: np.ndarray, n_classes: int,
              grid: tuple[float, ...] = (0.01, 0.1, 1.0), n_inner: int = 4,
              seed: int = 0) -> float:
    """The L2 penalty with the best inner cross-validated accuracy (training data only)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(labels.size)
    inner = np.array_split(order, n_inner)
    scores = []
    for l2 in grid:
        correct = 0
        for held_out in inner:
            train = np.setdiff1d(order, held_out)
            model = fit_softmax(features[train], labels[train], n_classes, l2=l2)
            correct += int(np.sum(model.predict_proba(features[held_out]).argmax(1)
                                  == labels[held_out]))
        scores.append(correct)
    return grid[int(np.argmax(scores))]
