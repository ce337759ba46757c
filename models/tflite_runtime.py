"""TensorFlow Lite / LiteRT runtime: an artifact's ``genred export`` file as a batch predictor.

The interpreter is ``ai_edge_litert`` when installed, else ``tf.lite.Interpreter``
(XNNPACK delegate, ``num_threads`` threads). ``models.export`` writes the file.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from models.contract import ArtifactError
from models.stderr_filter import XNNPACK_NOTICE, once_without

TFLITE_FILE = "model.tflite"


def litert_available() -> bool:
    """Whether the TensorFlow-free LiteRT interpreter (``ai_edge_litert``) is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def _interpreter_class() -> Any:
    """ai_edge_litert's Interpreter when installed, else tf.lite.Interpreter."""
    if litert_available():
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    import tensorflow as tf

    return tf.lite.Interpreter


def usable_cores() -> int:
    """Cores this process may run on (its affinity: ``taskset -c 0`` gives 1), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class TflitePredictor:
    """A TFLite model as a batch predictor: (N, *input_shape) -> (N, n_labels) float32.

    The interpreter is resized to the batch size of each call (cached while it stays the
    same). Calls are serialised: an interpreter is not thread-safe.
    """

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.num_threads = num_threads or usable_cores()
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
        self._interpreter_name = "LiteRT" if litert_available() else "tf.lite"

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
        batch = np.ascontiguousarray(features, dtype=self._input["dtype"])
        with self._lock:
            if batch.shape[0] != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
                once_without(XNNPACK_NOTICE, self._interpreter.allocate_tensors)
                self._batch = batch.shape[0]
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return np.array(self._interpreter.get_tensor(self._output["index"]),
                            dtype=np.float32)

    def describe(self) -> str:
        """Runtime and thread count."""
        plural = "" if self.num_threads == 1 else "s"
        return f"TFLite CPU ({self._interpreter_name}), {self.num_threads} thread{plural}"
