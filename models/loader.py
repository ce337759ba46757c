"""Load a model artifact for inference: check its contract, open its runtime, check its shapes.

One loader for every runtime: ``keras`` (the artifact's Keras model), ``tflite`` (its
``genred export`` file, run by LiteRT / tf.lite) and ``openvino`` (the same file, run by
OpenVINO). All are :class:`Predictor` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.artifact import KerasPredictor, open_keras
from models.contract import ArtifactError, Contract, check_contract, check_io, read_contract
from models.openvino_runtime import OpenVinoPredictor
from models.outcome import split_outputs
from models.precision import POLICIES, check_precision, runtime_precision_error, with_precision
from models.registry import MODEL_KINDS
from models.tflite_runtime import TflitePredictor, litert_available

RUNTIMES = ("auto", "keras", "tflite", "openvino")
"""auto: the TFLite export when the artifact has one, LiteRT is installed, the precision is
float32 and there is no NVIDIA GPU (no TensorFlow import: less memory, faster start), else the
Keras model (daemon/CLI: models/runtime_choice.py measures instead)."""
EXPORT_RUNTIMES = ("tflite", "openvino")
"""Runtimes that run the artifact's ``genred export`` file."""
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
"""Present when an NVIDIA driver is loaded (scripts/dev installs TensorFlow's CUDA build)."""


class Predictor(Protocol):
    """A model runtime: a batch of features (N, *input_shape) -> probabilities (N, n_outputs)."""

    input_shape: tuple[int, ...]
    n_outputs: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_outputs) float32."""
        ...

    def describe(self) -> str:
        """Where inference runs (device, threads), for the log."""
        ...


@dataclass
class LoadedModel:
    """A checked contract with its runtime, ready to predict."""

    contract: Contract
    predictor: Predictor
    folder: Path

    @property
    def labels(self) -> tuple[str, ...]:
        """Output labels in order."""
        return self.contract.labels

    @property
    def parallel_calls(self) -> int:
        """Predict calls that run side by side (1: one at a time)."""
        stage = getattr(self.predictor, "stage", self.predictor)
        return int(getattr(stage, "parallel_calls", 1))

    @property
    def model(self) -> Any:
        """The Keras model (keras runtime only)."""
        return self.predictor.model  # type: ignore[attr-defined]

    def predict_outputs(self, features: np.ndarray) -> np.ndarray:
        """Raw outputs (N, n_outputs) float32: labels, then 'no music' where declared."""
        if tuple(features.shape[1:]) != self.contract.input_shape:
            raise ValueError(f"features shape {features.shape[1:]} != model input "
                             f"{self.contract.input_shape}")
        return self.predictor.predict(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Genre probabilities (N, n_labels) float32 for a batch of features."""
        return split_outputs(self.predict_outputs(features), len(self.labels))[0]


def load_model(folder: str | Path, runtime: str = "keras", num_threads: int | None = None,
               precision: str = "float32", parallel_calls: int = 1) -> LoadedModel:
    """Load and check an artifact for ``runtime``; any problem raises ArtifactError naming it.

    ``num_threads``: TFLite / OpenVINO threads (None = every core the process may use:
    ``taskset -c 0`` gives 1). ``precision``: compute precision (models.precision.PRECISIONS;
    weights stay float32; runtime_precision_error says which runtime runs which).
    ``parallel_calls``: predict calls that may run side by side (OpenVINO streams; the other
    runtimes serialise them).
    """
    if runtime not in RUNTIMES:
        raise ArtifactError(f"unknown runtime {runtime!r} (known: {RUNTIMES})")
    check_precision(precision)
    problem = runtime_precision_error(runtime, precision)
    if problem is not None:
        raise ArtifactError(f"precision {precision} {problem}")
    folder = Path(folder)
    contract = read_contract(folder)
    check_contract(contract)
    runtime = resolve_runtime(contract, runtime, precision)
    if runtime in EXPORT_RUNTIMES:
        path = _tflite_path(folder, contract)
        predictor: Predictor = _export_predictor(path, contract, runtime, num_threads,
                                                 precision, parallel_calls)
        where = str(path)
    else:
        predictor, where = open_keras(folder, contract), str(folder)
        if precision != "float32":
            predictor = KerasPredictor(with_precision(predictor.model, precision),
                                       POLICIES[precision])
    check_io(predictor.input_shape, predictor.n_outputs, contract, where)
    return LoadedModel(contract=contract, predictor=predictor, folder=folder)


def load_artifact(folder: str | Path) -> LoadedModel:
    """Load and check an artifact's Keras model."""
    return load_model(folder, "keras")


def resolve_runtime(contract: Contract, runtime: str, precision: str = "float32") -> str:
    """The runtime ``runtime`` means for this artifact: auto picks one (keras for a reduced
    precision)."""
    if runtime != "auto":
        return runtime
    tflite_ok = runtime_precision_error("tflite", precision) is None
    return auto_runtime(contract) if tflite_ok else "keras"


def auto_runtime(contract: Contract) -> str:
    """'tflite' when the contract notes a TFLite export, LiteRT is installed and no NVIDIA GPU
    driver is loaded (Keras uses the GPU), else 'keras'."""
    exported = isinstance(contract.extra.get("tflite"), dict)
    return "tflite" if exported and litert_available() and not NVIDIA_DRIVER.exists() \
        else "keras"


def _export_predictor(path: Path, contract: Contract, runtime: str, num_threads: int | None,
                      precision: str, parallel_calls: int = 1) -> Predictor:
    """The export run by ``runtime`` as a window predictor: the whole model, or the model
    kind's exported stage (its ``tflite_stage`` entry in models/registry.py)."""
    stage: Predictor = OpenVinoPredictor(path, num_threads, precision, parallel_calls) \
        if runtime == "openvino" else TflitePredictor(path, num_threads)
    if contract.extra["tflite"].get("stage") is None:
        return stage
    return MODEL_KINDS[contract.model_kind].open_tflite_stage(stage, path, contract)


def _tflite_path(folder: Path, contract: Contract) -> Path:
    """The TFLite file the contract notes; ArtifactError when there is none."""
    note = contract.extra.get("tflite")
    if not isinstance(note, dict) or not isinstance(note.get("file"), str):
        raise ArtifactError(f"{folder}: no TFLite export in contract.json (run: genred export "
                            f"{folder} --format tflite)")
    path = folder / note["file"]
    if not path.is_file():
        raise ArtifactError(f"{folder}: TFLite file {note['file']} is missing")
    return path
