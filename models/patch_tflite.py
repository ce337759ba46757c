"""The export runtimes of 'musicnn-patch-head' models: the exported patch-logits stage, pooled.

``genred export`` writes a patch model's per-patch stage ((187, 96) log-mel patch -> head
logits, see :func:`models.patch_head.patch_logits_model`) as ``model.tflite``; this module
runs it without TensorFlow (through LiteRT or OpenVINO, the stage predictor it is given) and
pools each window as the Keras window model does:
softmax(mean of the window's patch logits / temperature), the temperature being the
contract's ``head.temperature``. The daemon's patch serving uses :meth:`encode` per new patch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.contract import ArtifactError, Contract

PATCH_LOGITS = "patch_logits"
"""Name of the per-patch stage (patch -> head logits), also the TFLite export's ``stage``."""
TEMPERATURE_TOLERANCE = 1e-3
"""Largest difference between the export's and the contract's temperature."""
ENCODE_CHUNK_PATCHES = 16
"""Patches per encoder call at most: ~20 ms per patch from 5 up, but 64 at once took the
daemon from 0.8 to 2.0 GB (activations); a warm-up burst of many sources is cut in 16s."""


def pool_patch_logits(patch_logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(mean over patches of logits / temperature): (..., n_patches, n) -> (..., n)."""
    scaled = (patch_logits.astype(np.float64) / float(temperature)).mean(axis=-2)
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


class PatchLogitsPredictor:
    """Windows (N, n_patches, 187, 96) -> pooled outputs (N, n_outputs) via an exported
    per-patch stage (a LiteRT or OpenVINO predictor of patches)."""

    def __init__(self, stage: Any, n_patches: int, temperature: float) -> None:
        self.stage = stage
        self.n_patches = int(n_patches)
        self.temperature = float(temperature)
        self.input_shape = (self.n_patches, *self.stage.input_shape)
        self.n_outputs = self.stage.n_outputs

    def encode(self, patches: np.ndarray) -> np.ndarray:
        """Head logits (n, n_outputs) of patches (n, 187, 96), at most 16 per call."""
        return np.concatenate([self.stage.predict(patches[i:i + ENCODE_CHUNK_PATCHES])
                               for i in range(0, patches.shape[0], ENCODE_CHUNK_PATCHES)])

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Pooled outputs (N, n_outputs) float32 of a batch of windows."""
        patch_logits = self.encode(windows.reshape(-1, *self.stage.input_shape))
        return pool_patch_logits(
            patch_logits.reshape(windows.shape[0], self.n_patches, -1), self.temperature)

    def describe(self) -> str:
        """Runtime, threads and the per-patch form."""
        return f"{self.stage.describe()}, per-patch stage"


def open_stage(stage: Any, path: Path, contract: Contract) -> PatchLogitsPredictor:
    """The exported patch-logits stage of a contract (``stage``: its runtime, opened on
    ``path``), pooled per window (ArtifactError when the export is of another stage or was
    made with another temperature)."""
    note = contract.extra["tflite"]
    name = note.get("stage")
    if name != PATCH_LOGITS:
        raise ArtifactError(f"{path}: unknown exported stage {name!r} (known: {PATCH_LOGITS})")
    temperature = float(note["temperature"])
    declared = contract.head.get("temperature")
    if declared is not None and abs(float(declared) - temperature) > TEMPERATURE_TOLERANCE:
        raise ArtifactError(f"{path}: exported with temperature {temperature}, the contract "
                            f"says {declared}: a stale export (run genred export again)")
    return PatchLogitsPredictor(stage, contract.input_shape[0], temperature)
