"""The one table of model kinds and front-ends this code implements.

A front-end is what the daemon computes from a source's audio for a model (its contract
parameters and its feature extractor); a model kind is the module defining the model's
layers (imported before loading, so custom layers are known to Keras), for kinds that
``genred train`` fits the builder function (and whether it takes ImageNet weights), for kinds
the daemon streams their own way (per-patch outputs cached and pooled) their serving, and for
kinds whose export is a stage of the model, the stage's export and its TFLite runtime.

Entries name their code as ``"module:attribute"`` strings, imported on first use, so this
table imports neither Keras nor any model code; :func:`resolve` turns a string that does not
resolve into a clear :class:`RegistryError`, and tests/test_architecture.py resolves every
string here and counts each as an import edge of this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models import bfft
from models.errors import GenredError
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
    tflite_stage: str | None = None
    """'module:function(stage, path, contract) -> Predictor': the window predictor of the
    exported stage, given the export runtime (LiteRT, OpenVINO) opened on ``path`` (None:
    the export is the whole model)."""
    imagenet_weights: bool = False
    """``genred train --weights imagenet`` applies (the builder loads Keras' ImageNet VGG16)."""

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

    def open_tflite_stage(self, stage: Any, path: Any, contract: Any) -> Any:
        """The window predictor of this kind's exported stage, run by ``stage`` (RegistryError
        when it has none)."""
        if self.tflite_stage is None:
            raise RegistryError(f"model kind {self.name!r} exports the whole model, yet the "
                                f"contract names an exported stage")
        return _resolve(self.tflite_stage)(stage, path, contract)

    def targets(self) -> list[str]:
        """Every 'module:attribute' string of this entry."""
        return [t for t in (self.builder, self.serving, self.export_stage, self.tflite_stage)
                if t is not None]


FRONTENDS: dict[str, FrontEnd] = {entry.name: entry for entry in (
    FrontEnd(bfft.FRONTEND_NAME, bfft.FRONTEND_VERSION, bfft.DEFAULT_PARAMS.to_dict(),
             "models.features:bfft_extractor"),
    FrontEnd(musicnn_spec.FRONTEND_NAME, musicnn_spec.FRONTEND_VERSION, musicnn_spec.PARAMS,
             "models.musicnn.features:MusicnnExtractor"),
)}

MODEL_KINDS: dict[str, ModelKind] = {entry.name: entry for entry in (
    ModelKind("vgg16-bfft", "models.vgg16", bfft.FRONTEND_NAME, "models.vgg16:build_vgg16",
              imagenet_weights=True),
    ModelKind("musicnn-patch-head", "models.patch_head", musicnn_spec.FRONTEND_NAME,
              serving="models.patch_serving:patch_serving",
              export_stage="models.patch_head:export_stage",
              tflite_stage="models.patch_tflite:open_stage"),
    ModelKind("tiny-cnn", "models.tiny", bfft.FRONTEND_NAME, "models.tiny:build_tiny_cnn"),
)}


def trainable_kinds() -> list[str]:
    """Model kinds ``genred train`` can fit (those with a builder), sorted."""
    return sorted(name for name, kind in MODEL_KINDS.items() if kind.builder is not None)


class RegistryError(GenredError, LookupError):
    """A 'module:attribute' string of the registry does not name importable code."""


def registry_targets() -> list[str]:
    """Every 'module:attribute' string of both tables (the architecture test counts them)."""
    return ([entry.extractor for entry in FRONTENDS.values()]
            + [t for kind in MODEL_KINDS.values() for t in kind.targets()])


def resolve(target: str) -> Callable[..., Any]:
    """The object a 'module:attribute' string names (the module is imported), or a
    RegistryError saying which string and why."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise RegistryError(f"model registry: {target!r} is not 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RegistryError(f"model registry: cannot import {module_name} for {target!r} "
                            f"({type(error).__name__}: {error})") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise RegistryError(f"model registry: {module_name} has no {attribute!r} "
                            f"(named by {target!r})") from None


_resolve = resolve
