"""Inference ceiling: VGG16 seconds per window at batch 1/4/8 vs the CPU's fp32 limit.

The model runs as the daemon runs it (``LoadedModel.predict`` = Keras ``predict_on_batch``,
or the TFLite predictor with ``--runtime tflite``). The limit is measured with a large fp32
matmul in numpy and TensorFlow on every core, and derived from /proc/cpuinfo.

Run: .venv/bin/python -m bench.inference [--repeats 12] [--runtime keras]
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np

from bench.common import (
    ensure_tflite,
    setup_logging,
    summarize,
    theoretical_peak,
    vgg16_artifact,
    write_result,
)

_LOGGER = logging.getLogger("bench.inference")
MATMUL_N = 4096


def time_calls(call, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds of ``repeats`` calls of ``call`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def matmul_peak(repeats: int) -> dict[str, Any]:
    """GFLOP/s of an N x N fp32 matmul in numpy (OpenBLAS) and TensorFlow, all threads."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32) for _ in range(2))
    flops = 2.0 * MATMUL_N**3
    ta, tb = tf.constant(a), tf.constant(b)
    result = {}
    for name, call in (("numpy", lambda: a @ b),
                       ("tensorflow", lambda: tf.linalg.matmul(ta, tb).numpy())):
        seconds = time_calls(call, repeats)
        result[name] = {"gflops_median": round(flops / float(np.median(seconds)) / 1e9, 1),
                        "gflops_best": round(flops / min(seconds) / 1e9, 1)}
    result["measured_peak_gflops"] = max(r["gflops_best"] for r in result.values())
    return result


def model_macs(model: Any) -> int:
    """Multiply-adds of one image through the model's Conv2D and Dense layers."""
    import keras

    total = 0
    layers = list(model._flatten_layers(include_self=False))
    for layer in layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def load_predictor(runtime: str, quantize: str) -> tuple[Any, Any]:
    """(predict callable, Keras model or None) of the random VGG16 artifact."""
    from daemon.runner import load_model_handle

    folder = ensure_tflite(quantize) if runtime == "tflite" else vgg16_artifact()
    handle = load_model_handle(str(folder), runtime=runtime)
    keras_model = None
    if runtime == "keras":
        from models.loader import load_artifact

        keras_model = load_artifact(folder).model
    return handle.serving.predict, keras_model


def run(repeats: int, batches: tuple[int, ...], runtime: str, quantize: str,
        peak: bool) -> dict[str, Any]:
    """All inference figures."""
    predict, keras_model = load_predictor(runtime, quantize)
    macs = model_macs(keras_model) if keras_model is not None else None
    rng = np.random.default_rng(1)
    per_batch = {}
    for batch in batches:
        images = rng.integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
        n = max(3, repeats * 2 // (batch + 1))
        seconds = time_calls(lambda images=images: predict(images), n)
        per_window = [s / batch for s in seconds]
        per_batch[str(batch)] = summarize(per_window)
        _LOGGER.info("%s batch %d: %.3f s/window (median of %d)", runtime, batch,
                     per_batch[str(batch)]["median"], n)
    result: dict[str, Any] = {"runtime": runtime, "quantize": quantize if runtime == "tflite"
                              else None, "seconds_per_window": per_batch}
    best = min(v["median"] for v in per_batch.values())
    result["best_seconds_per_window"] = best
    result["best_batch"] = int(min(per_batch, key=lambda k: per_batch[k]["median"]))
    if peak:
        result["matmul"] = matmul_peak(max(3, repeats // 2))
        result["theoretical"] = theoretical_peak()
        result["model_gmacs"] = round((macs or 15.5e9) / 1e9, 3)
        gflop = 2 * (macs or 15.5e9) / 1e9
        for key, limit in (("of_measured_peak", result["matmul"]["measured_peak_gflops"]),
                           ("of_theoretical_peak", result["theoretical"]["peak_gflops"])):
            result[key] = {b: round(gflop / v["median"] / limit, 3) for b, v in per_batch.items()}
    return result


def main() -> None:
    """Measure and write bench/results/inference[_<runtime>].json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--batches", default="1,4,8")
    parser.add_argument("--runtime", choices=("keras", "tflite"), default="keras")
    parser.add_argument("--quantize", choices=("none", "float16", "int8"), default="none")
    parser.add_argument("--no-peak", action="store_true", help="skip the matmul peak")
    parser.add_argument("--name", default=None, help="results file name")
    args = parser.parse_args()
    setup_logging()
    batches = tuple(int(b) for b in args.batches.split(","))
    result = run(args.repeats, batches, args.runtime, args.quantize, not args.no_peak)
    write_result(args.name or "inference", result)


if __name__ == "__main__":
    main()
