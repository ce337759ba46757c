"""How the daemon serves a loaded model: a feature extractor per source, one batch call per batch.

Chosen by the model kind (``serving`` in models/registry.py). Kinds without their own serving
get :class:`WindowServing`: the front-end's extractor makes each window's whole input, the
inputs of a batch are stacked and run through the model. Patch-head models cache per-patch
outputs instead (models/patch_serving.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.features import FeatureExtractor, make_extractor
from models.loader import LoadedModel
from models.outcome import WindowResult, results_from_rows
from models.registry import MODEL_KINDS


class Serving(Protocol):
    """A model as the daemon runs it."""

    def new_extractor(self) -> FeatureExtractor:
        """A fresh extractor for one source (event loop)."""
        ...

    def collate(self, features: list[Any]) -> Any:
        """One batch from the due windows' features (event loop thread or worker, cheap)."""
        ...

    def predict(self, batch: Any) -> Sequence[WindowResult]:
        """One result per window of a batch of N windows (inference thread)."""
        ...

    prefetch: Callable[[list[Any]], int] | None
    """Work ahead of windows (inference thread): the extractors' ``pending_work`` items."""
    discard: Callable[[Any], None] | None
    """Shed a window's features or a work item the worker replaced before it ran (event loop)."""
    patch_step_samples: float | None
    """Samples per patch when results carry patch scores (daemon/change.py), else None."""


class WindowServing:
    """Each window's whole input from the front-end's extractor; the model maps stacked windows."""

    prefetch = None
    """Nothing to do between windows."""
    discard = None
    """A window's input is its own: nothing to shed."""
    patch_step_samples = None
    """Results carry no patch scores."""

    def __init__(self, loaded: LoadedModel) -> None:
        self._loaded = loaded

    def new_extractor(self) -> FeatureExtractor:
        """The contract front-end's extractor."""
        contract = self._loaded.contract
        return make_extractor(contract.frontend_name, contract.frontend_params)

    def collate(self, features: list[Any]) -> np.ndarray:
        """Stacked window inputs."""
        return np.stack(features)

    def predict(self, batch: np.ndarray) -> list[WindowResult]:
        """The model's outputs for stacked windows."""
        return results_from_rows(self._loaded.predict_outputs(batch))


@dataclass
class FunctionServing:
    """A model given as plain functions (tests, benchmarks, the fake-model harness)."""

    new_extractor: Callable[[], FeatureExtractor]
    predict_rows: Callable[[Any], np.ndarray]
    """Collated batch of N windows -> outputs (N, n_outputs)."""
    collate: Callable[[list[Any]], Any] = np.stack
    prefetch: Callable[[list[Any]], Any] | None = None
    discard: Callable[[Any], None] | None = None
    patch_step_samples: float | None = None

    def predict(self, batch: Any) -> list[WindowResult]:
        """Results of the function's output rows."""
        return results_from_rows(self.predict_rows(batch))


def serving_for(loaded: LoadedModel) -> Serving:
    """The model kind's own serving, else :class:`WindowServing`."""
    kind = MODEL_KINDS.get(loaded.contract.model_kind)
    own = kind.make_serving(loaded) if kind is not None else None
    return own if own is not None else WindowServing(loaded)
