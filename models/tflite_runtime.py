"""TensorFlow Lite export and predictor: a lighter CPU runtime for an artifact's Keras model.

``genred export MODEL_DIR --format tflite --quantize {none,float16,int8}`` converts the
artifact's Keras model with ``tf.lite.TFLiteConverter`` and writes ``model.tflite`` next to
it, noting it in contract.json's ``extra``::

    "extra": {"tflite": {"file": "model.tflite", "quantize": "int8", ...}}

``quantize``: ``none`` (fp32), ``float16`` (fp16 weights, fp32 compute on CPU) or ``int8``
(dynamic-range: int8 weights, activations quantized on the fly). The daemon uses the export
when config.yaml says ``inference: {runtime: tflite}``; the contract's checks still apply.
The interpreter is ``ai_edge_litert`` when installed, else ``tf.lite.Interpreter``
(XNNPACK delegate, ``num_threads`` threads).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from models.artifact import ArtifactError, Contract, check_contract, read_contract, update_contract

_LOGGER = logging.getLogger(__name__)

TFLITE_FILE = "model.tflite"
QUANTIZE_MODES = ("none", "float16", "int8")


def export_tflite(folder: str | Path, quantize: str = "none", filename: str = TFLITE_FILE) -> Path:
    """Convert ``folder``'s Keras model to ``folder/filename``; records it in contract.json."""
    import tensorflow as tf

    from models.artifact import load_artifact

    if quantize not in QUANTIZE_MODES:
        raise ArtifactError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    folder = Path(folder)
    started = time.monotonic()
    loaded = load_artifact(folder)
    converter = tf.lite.TFLiteConverter.from_keras_model(loaded.model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signature
        flatbuffer = converter.convert()
    path = folder / filename
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(flatbuffer)
    partial.replace(path)
    update_contract(folder, extra={"tflite": {
        "file": filename, "quantize": quantize, "from": loaded.contract.model_file,
        "bytes": len(flatbuffer), "tensorflow": tf.__version__}})
    _LOGGER.info("exported %s (%s, %.1f MB) in %.1f s", path, quantize, len(flatbuffer) / 1e6,
                 time.monotonic() - started)
    return path


def _interpreter_class() -> Any:
    """ai_edge_litert's Interpreter when installed, else tf.lite.Interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - a class
    return Interpreter


class TflitePredictor:
    """A TFLite model as a batch predictor: (N, *input_shape) -> (N, n_labels) float32.

    The interpreter is resized to the batch size of each call (cached while it stays the
    same). Calls are serialised: an interpreter is not thread-safe.
    """

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.num_threads = num_threads or os.cpu_count() or 1
        try:
            with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
                warnings.simplefilter("ignore", UserWarning)
                self._interpreter = _interpreter_class()(model_path=str(self.path),
                                                         num_threads=self.num_threads)
        except (ValueError, RuntimeError) as error:
            raise ArtifactError(f"{self.path}: cannot load TFLite model ({error})") from error
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = 0
        self._lock = threading.Lock()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example."""
        return tuple(int(d) for d in self._input["shape"][1:])

    @property
    def n_outputs(self) -> int:
        """Length of one output row."""
        return int(self._output["shape"][-1])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_labels) for a batch of features."""
        if tuple(features.shape[1:]) != self.input_shape:
            raise ValueError(f"features shape {features.shape[1:]} != model input "
                             f"{self.input_shape}")
        batch = np.ascontiguousarray(features, dtype=self._input["dtype"])
        with self._lock:
            if batch.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
                self._interpreter.allocate_tensors()
                self._batch = batch.shape[0]
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return np.array(self._interpreter.get_tensor(self._output["index"]),
                            dtype=np.float32)


def load_tflite_artifact(folder: str | Path,
                         num_threads: int | None = None) -> tuple[Contract, TflitePredictor]:
    """Check ``folder``'s contract and load its TFLite export, or raise ArtifactError."""
    folder = Path(folder)
    contract = read_contract(folder)
    check_contract(contract)
    note = contract.extra.get("tflite")
    if not isinstance(note, dict) or not isinstance(note.get("file"), str):
        raise ArtifactError(f"{folder}: no TFLite export in contract.json (run: genred export "
                            f"{folder} --format tflite)")
    path = folder / note["file"]
    if not path.is_file():
        raise ArtifactError(f"{folder}: TFLite file {note['file']} is missing")
    predictor = TflitePredictor(path, num_threads)
    if predictor.input_shape != contract.input_shape:
        raise ArtifactError(f"{path}: input {predictor.input_shape} != contract "
                            f"{contract.input_shape}")
    if predictor.n_outputs != len(contract.labels):
        raise ArtifactError(f"{path}: {predictor.n_outputs} outputs but the contract lists "
                            f"{len(contract.labels)} labels")
    return contract, predictor
