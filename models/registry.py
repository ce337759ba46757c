"""The one table of model kinds and front-ends this code implements.

A front-end is what the daemon computes from a source's audio for a model (its contract
parameters and its feature extractor); a model kind is the module defining the model's
layers (imported before loading, so custom layers are known to Keras), for kinds that
``genred train`` fits the builder function, and for kinds the daemon streams their own way
(per-patch outputs cached and pooled) their serving. Entries name modules by string and are imported
on first use, so this table imports neither Keras nor any model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models import bfft
from models.musicnn import spec as musicnn_spec


@dataclass(frozen=True)
class FrontEnd:
    """A front-end: contract version and parameters, and its feature extractor factory."""

    name: str
    version: int
    params: dict[str, Any]
    """Every parameter the contract records; a model must match them exactly."""
    extractor: str
    """'module:function' making a FeatureExtractor from the contract's parameters."""

    def make_extractor(self, params: dict[str, Any]) -> Any:
        """A fresh feature extractor (one per source) for the contract's ``params``."""
        return _resolve(self.extractor)(params)


@dataclass(frozen=True)
class ModelKind:
    """A model kind: the module defining its layers, its front-end, its training builder."""

    name: str
    module: str
    """Module imported before loading (registers custom layers with Keras)."""
    frontend: str
    """Name of the front-end its input comes from."""
    builder: str | None = None
    """'module:function(labels, weights=...)' used by ``genred train`` (None: not trained so)."""
    serving: str | None = None
    """'module:function(loaded_model)' giving how the daemon streams this kind (None: the
    front-end's extractor makes each window's whole input; see models/serving.py)."""

    export_stage: str | None = None
    """'module:function(keras_model) -> (keras_model, note)': the graph ``genred export``
    converts instead of the whole model, and what its runtime needs to know (None: the whole
    model)."""

    def load_module(self) -> None:
        """Import the kind's module so its custom layers are known to Keras."""
        importlib.import_module(self.module)

    def build(self, labels: list[str], weights: str) -> Any:
        """A new Keras model of this kind for ``labels``."""
        if self.builder is None:
            raise ValueError(f"model kind {self.name!r} has no training builder")
        return _resolve(self.builder)(labels, weights=weights)

    def export_graph(self, model: Any) -> tuple[Any, dict[str, Any]]:
        """(graph to export, note for the contract) of a loaded Keras model of this kind."""
        return (model, {}) if self.export_stage is None else _resolve(self.export_stage)(model)

    def make_serving(self, loaded: Any) -> Any:
        """The kind's own serving of a loaded model (None when it has none)."""
        return None if self.serving is None else _resolve(self.serving)(loaded)


FRONTENDS: dict[str, FrontEnd] = {entry.name: entry for entry in (
    FrontEnd(bfft.FRONTEND_NAME, bfft.FRONTEND_VERSION, bfft.DEFAULT_PARAMS.to_dict(),
             "models.features:bfft_extractor"),
    FrontEnd(musicnn_spec.FRONTEND_NAME, musicnn_spec.FRONTEND_VERSION, musicnn_spec.PARAMS,
             "models.musicnn.features:MusicnnExtractor"),
)}

MODEL_KINDS: dict[str, ModelKind] = {entry.name: entry for entry in (
    ModelKind("vgg16-bfft", "models.vgg16", bfft.FRONTEND_NAME, "models.vgg16:build_vgg16"),
    ModelKind("musicnn-patch-head", "models.patch_head", musicnn_spec.FRONTEND_NAME,
              serving="models.patch_serving:patch_serving",
              export_stage="models.patch_head:export_stage"),
    ModelKind("tiny-cnn", "models.tiny", bfft.FRONTEND_NAME, "models.tiny:build_tiny_cnn"),
)}


def trainable_kinds() -> list[str]:
    """Model kinds ``genred train`` can fit (those with a builder), sorted."""
    return sorted(name for name, kind in MODEL_KINDS.items() if kind.builder is not None)


def _resolve(target: str) -> Callable[..., Any]:
    """The object a 'module:attribute' string names (the module is imported)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
