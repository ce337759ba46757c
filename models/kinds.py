"""Model kinds behind the artifact contract: kind name -> module defining its layers."""

from __future__ import annotations

import importlib

MODEL_KINDS: dict[str, str] = {
    "vgg16-bfft": "models.vgg16",
    "musicnn-head": "models.musicnn_head",
    "tiny-cnn": "models.tiny",
}


def register(model_kind: str) -> None:
    """Import the module of ``model_kind`` so its custom layers are known to Keras."""
    from models.artifact import ArtifactError

    if model_kind not in MODEL_KINDS:
        raise ArtifactError(
            f"unknown model kind {model_kind!r}; this code knows {sorted(MODEL_KINDS)}"
        )
    importlib.import_module(MODEL_KINDS[model_kind])
