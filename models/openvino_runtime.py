"""OpenVINO runtime: an artifact's ``genred export`` file, read by OpenVINO, as a predictor.

OpenVINO's TFLite frontend reads the same ``model.tflite`` LiteRT runs (no second export);
the model is compiled for the CPU with any batch size, ``num_threads`` threads and an
inference precision: float32, or bfloat16, which OpenVINO computes natively on CPUs with
avx512_bf16 or AMX (elsewhere it falls back to float32). On genred-default's patch stage
(Zen 4, 2 threads) bfloat16 took 9.7 ms per patch against LiteRT's 23.0, with every window
of gtzan-mini agreeing (bench/openvino_probe.py).
"""

from __future__ import annotations

import importlib.util
import queue
from pathlib import Path
from typing import Any

import numpy as np

from models.contract import ArtifactError
from models.precision import OPENVINO_PRECISIONS
from models.tflite_runtime import usable_cores

PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16"}
"""genred precision -> OpenVINO's INFERENCE_PRECISION_HINT."""


def openvino_available() -> bool:
    """Whether OpenVINO (``pip install 'genred[openvino]'``) is installed."""
    return importlib.util.find_spec("openvino") is not None


def _compile(path: Path, precision: str, num_threads: int, n_streams: int) -> Any:
    """The export compiled for the CPU, batch dimension dynamic, ``num_threads`` threads
    shared by ``n_streams`` streams (calls that run side by side)."""
    import openvino

    core = openvino.Core()
    model = core.read_model(str(path))
    shape = model.input(0).get_partial_shape()
    if shape.rank.is_static and len(shape) > 1 and shape[0].is_static:
        model.reshape([-1, *(dim.get_length() for dim in list(shape)[1:])])
    return core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
        "INFERENCE_NUM_THREADS": num_threads, "NUM_STREAMS": n_streams})


class OpenVinoPredictor:
    """A TFLite export run by OpenVINO: (N, *input_shape) -> (N, n_outputs) float32.

    ``parallel_calls`` infer requests, each on a stream of its own (the threads split among
    them): that many calls from different threads run side by side, more wait for a free
    request. One (the daemon's single inference thread) gives every call all the threads.
    """

    def __init__(self, path: str | Path, num_threads: int | None = None,
                 precision: str = "float32", parallel_calls: int = 1) -> None:
        if precision not in OPENVINO_PRECISIONS:
            raise ArtifactError(f"OpenVINO runs {list(OPENVINO_PRECISIONS)}, not {precision!r}")
        if not openvino_available():
            raise ArtifactError("runtime openvino: OpenVINO is not installed (pip install "
                                "'genred[openvino]', or use runtime: tflite)")
        self.path = Path(path)
        self.num_threads = num_threads or usable_cores()
        self.precision = precision
        self.parallel_calls = max(1, int(parallel_calls))
        try:
            compiled = _compile(self.path, precision, self.num_threads, self.parallel_calls)
        except RuntimeError as error:
            raise ArtifactError(f"{self.path}: OpenVINO cannot load it ({error})") from error
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        self._compiled_precision = getattr(hint, "get_type_name", lambda: str(hint))()
        self._requests: queue.Queue[Any] = queue.Queue()
        for _ in range(self.parallel_calls):
            self._requests.put(compiled.create_infer_request())
        self._output = compiled.output(0)
        partial = compiled.input(0).get_partial_shape()
        self.input_shape = tuple(dim.get_length() for dim in list(partial)[1:])
        self.n_outputs = int(compiled.output(0).get_partial_shape()[-1].get_length())

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Outputs (N, n_outputs) float32 for a batch of features."""
        batch = np.ascontiguousarray(features, dtype=np.float32)
        request = self._requests.get()
        try:
            return np.array(request.infer({0: batch})[self._output], dtype=np.float32)
        finally:
            self._requests.put(request)

    def describe(self) -> str:
        """Runtime, precision and thread count."""
        plural = "" if self.num_threads == 1 else "s"
        streams = f", {self.parallel_calls} streams" if self.parallel_calls > 1 else ""
        return (f"OpenVINO CPU ({self._compiled_precision}), {self.num_threads} "
                f"thread{plural}{streams}")
