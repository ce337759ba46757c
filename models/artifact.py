"""Model artifacts: a folder with the Keras model file and contract.json (see models.contract).

This module writes artifacts and opens their Keras model; ``models.loader`` loads an
artifact for inference with the Keras or TFLite runtime.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from models.bfft import FRONTEND_NAME
from models.contract import CONTRACT_FILE, ArtifactError, Contract
from models.extras import install_hint, keras_installed
from models.registry import FRONTENDS, MODEL_KINDS

_LOGGER = logging.getLogger(__name__)

GRAPH_FILE = "model.json"
FLOAT16_WEIGHTS_FILE = "weights.f16.npz"


def contract_for(name: str, model_kind: str, labels: list[str], input_shape: tuple[int, ...],
                 frontend_name: str = FRONTEND_NAME, **sections: Any) -> Contract:
    """A contract for the running code's front-end ``frontend_name``."""
    if frontend_name not in FRONTENDS:
        raise ArtifactError(f"unknown front-end {frontend_name!r}")
    frontend = FRONTENDS[frontend_name]
    version, params = frontend.version, frontend.params
    return Contract(
        name=name, model_kind=model_kind, frontend_name=frontend_name,
        frontend_version=version, frontend_params=dict(params),
        sample_rate_hz=int(params["sample_rate_hz"]), labels=tuple(labels),
        input_shape=tuple(input_shape), **sections,
    )


def save_artifact(model: Any, folder: str | Path, contract: Contract,
                  storage: str = "float32") -> Path:
    """Write model file + contract.json into ``folder`` atomically (temp folder, rename).

    ``storage="float16"`` writes the graph as model.json and the weights as float16 in
    weights.f16.npz (half the size); loading casts them back to float32.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage must be float32 or float16, got {storage!r}")
    if storage == "float16":
        contract = dataclasses.replace(contract, model_file=GRAPH_FILE)
    try:
        if storage == "float16":
            _save_float16(model, staging)
        else:
            model.save(str(staging / contract.model_file))
        text = json.dumps(contract.to_dict(), indent=2, sort_keys=False) + "\n"
        (staging / CONTRACT_FILE).write_text(text, encoding="utf-8")
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _LOGGER.info("saved model artifact %s", folder)
    return folder


def _save_float16(model: Any, folder: Path) -> None:
    """Graph as JSON plus float16 weights (in get_weights order)."""
    (folder / GRAPH_FILE).write_text(model.to_json(), encoding="utf-8")
    weights = {f"w{index:04d}": np.asarray(w, dtype=np.float16)
               for index, w in enumerate(model.get_weights())}
    np.savez(folder / FLOAT16_WEIGHTS_FILE, **weights)


def _load_float16(path: Path) -> Any:
    """Rebuild a model saved by _save_float16, weights cast back to float32."""
    import keras

    model = keras.models.model_from_json(path.read_text(encoding="utf-8"))
    with np.load(path.parent / FLOAT16_WEIGHTS_FILE) as stored:
        weights = [stored[key].astype(np.float32) for key in sorted(stored.files)]
    model.set_weights(weights)
    return model


def _replace_folder(staging: Path, folder: Path) -> None:
    """Move ``staging`` to ``folder``, keeping files in an existing folder that we don't write."""
    if not folder.exists():
        staging.rename(folder)
        return
    for item in staging.iterdir():
        target = folder / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)


class KerasPredictor:
    """An artifact's Keras model as a batch predictor."""

    def __init__(self, model: Any, policy: str = "float32") -> None:
        self.model = model
        self.policy = policy
        """The model's Keras dtype policy (models.precision), e.g. mixed_bfloat16."""
        self.input_shape = tuple(model.inputs[0].shape[1:])
        self.n_outputs = int(model.outputs[0].shape[-1])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_labels) float32 for a batch of features."""
        return np.asarray(self.model.predict_on_batch(features), dtype=np.float32)

    def describe(self) -> str:
        """A readable name of the device Keras runs on [, its dtype policy]."""
        where = self._device()
        return where if self.policy == "float32" else f"{where}, {self.policy}"

    def _device(self) -> str:
        """A readable name of the device Keras runs on."""
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"tensorflow GPU {gpus[0].name}" if gpus else "tensorflow CPU"
        if backend == "jax":
            import jax

            return f"jax {jax.devices()[0]}"
        return backend


def open_keras(folder: Path, contract: Contract) -> KerasPredictor:
    """The artifact's Keras model with its kind's layers registered; problems -> ArtifactError."""
    if not keras_installed():
        raise ArtifactError(install_hint("keras", "runtime keras"))
    import keras

    path = folder / contract.model_file
    if not path.is_file():
        raise ArtifactError(f"{folder}: model file {contract.model_file} is missing")
    kind = MODEL_KINDS.get(contract.model_kind)
    if kind is None:
        raise ArtifactError(f"unknown model kind {contract.model_kind!r}; this code knows "
                            f"{sorted(MODEL_KINDS)}")
    kind.load_module()
    try:
        if path.name == GRAPH_FILE:
            return KerasPredictor(_load_float16(path))
        return KerasPredictor(keras.saving.load_model(str(path), compile=False))
    except Exception as error:  # zip, h5 and deserialisation errors come in many types
        raise ArtifactError(f"{path}: cannot load model file ({type(error).__name__}: "
                            f"{error})") from error
