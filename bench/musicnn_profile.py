"""musicnn embedding cost per 3-s patch vs the CPU's fp32 peak; where the FLOPs go; bf16; XLA.

The encoder is ``MSD_musicnn`` cut at 'penultimate' (as the former kind 'musicnn-head' used
it), fed real patches (gtzan-mini ``*.00000.flac``, first 30 s, streamed
grid). Every figure is recorded with the 1-min load average of the (shared) machine.

Run: PYTHONPATH=. python -m bench.musicnn_profile [--seconds 4] (writes
bench/results/musicnn_profile.json; findings in bench/musicnn_profile.md)
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SHARED_DATA, setup_logging, theoretical_peak, write_result

_LOGGER = logging.getLogger("bench.musicnn_profile")
BATCHES = (1, 10, 32)
MATMUL_N = 4096
WINDOW_SECONDS = 30.0


def load(seconds: float = 0.0) -> float:
    """The 1-min load average (after ``seconds`` of sleep, to let it settle)."""
    time.sleep(seconds)
    return round(os.getloadavg()[0], 2)


def real_patches() -> tuple[np.ndarray, list[str]]:
    """Streamed-grid patches of the first 30 s of every gtzan-mini ``*.00000.flac``."""
    from models.audio import load_audio
    from models.musicnn.streaming import stream_patches

    clips = sorted((SHARED_DATA / "gtzan-mini").glob("*/*.00000.flac"))
    if not clips:
        raise SystemExit(f"no clips under {SHARED_DATA / 'gtzan-mini'}")
    patches, names = [], []
    for clip in clips:
        clip_patches = stream_patches(load_audio(clip)[: int(WINDOW_SECONDS * 44100 + 100)])
        patches.append(clip_patches)
        names.extend([clip.stem] * clip_patches.shape[0])
    return np.concatenate(patches), names


def seconds_per_call(call: Callable[[], Any], budget_seconds: float) -> tuple[float, float]:
    """Median wall and CPU (all threads) seconds of ``call`` over ~``budget_seconds``."""
    call()
    call()
    wall: list[float] = []
    cpu: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < budget_seconds or len(wall) < 3:
        began, began_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def layer_flops(model: Any) -> dict[str, float]:
    """FLOPs per patch (2 x multiply-adds) of the conv and dense layers, by stage."""
    stages: dict[str, float] = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv1D", "Dense"):
            continue
        kernel = layer.kernel.shape
        outputs = int(np.prod(layer.output.shape[1:]))  # (T, F, C) or (T, C) or (C,)
        macs = outputs * int(np.prod(kernel[:-1]))
        stage = layer.name.split("_")[0].rstrip("0123456789")
        stages[stage] = stages.get(stage, 0.0) + 2.0 * macs
    return stages


def embedding(policy: str = "float32") -> Any:
    """MSD_musicnn cut at 'penultimate', built under the Keras dtype ``policy``."""
    import keras

    from models.musicnn import load_musicnn

    keras.mixed_precision.set_global_policy(policy)
    try:
        base = load_musicnn("MSD_musicnn")
        return keras.Model(base.input, base.output["penultimate"], name=f"emb_{policy}")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def time_batches(predicts: dict[str, Callable[[np.ndarray], Any]], patches: np.ndarray,
                 budget_seconds: float, batches: tuple[int, ...] = BATCHES,
                 rounds: int = 3) -> dict[str, Any]:
    """ms per patch of each variant at each batch size, variants alternated (paired under load)."""
    result: dict[str, Any] = {name: {} for name in predicts}
    for batch in batches:
        x = patches[:batch]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in predicts}
        for _ in range(rounds):
            for name, predict in predicts.items():
                samples[name].append(seconds_per_call(lambda x=x, p=predict: p(x),
                                                      budget_seconds / rounds))
        for name in predicts:
            wall_ms, cpu_ms = (float(v) / batch * 1e3 for v in np.median(samples[name], axis=0))
            row = {"ms_per_patch": round(wall_ms, 2), "cpu_ms_per_patch": round(cpu_ms, 2),
                   "load": load()}
            result[name][str(batch)] = row
            _LOGGER.info("%s batch %d: %s", name, batch, row)
    return result


def matmul_peak(budget_seconds: float) -> dict[str, Any]:
    """GFLOP/s of a 4096^2 fp32 matmul (all cores) in numpy and TensorFlow: measured peak."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    result: dict[str, Any] = {}
    flops = 2.0 * MATMUL_N**3
    for name, call in (("numpy", lambda: a @ b),
                       ("tensorflow", lambda: tf.linalg.matmul(ta, tb).numpy())):
        wall, cpu = seconds_per_call(call, budget_seconds)
        result[name] = {"gflops": round(flops / wall / 1e9, 1),
                        "gflops_per_cpu_second": round(flops / cpu / 1e9, 1)}
    for key in ("gflops", "gflops_per_cpu_second"):
        result[key] = max(result["numpy"][key], result["tensorflow"][key])
    result["load"] = load()
    _LOGGER.info("matmul peak %s", result)
    return result


def stage_cuts(model: Any) -> dict[str, Callable[[np.ndarray], Any]]:
    """predict_on_batch of the graph cut after its front-end, after its mid-end, and whole."""
    import keras

    cuts = {name: keras.Model(model.input, model.get_layer(name).output)
            for name in ("frontend", "midend")}
    return {"up_to_frontend": cuts["frontend"].predict_on_batch,
            "up_to_midend": cuts["midend"].predict_on_batch,
            "whole": model.predict_on_batch}


def head_weights() -> tuple[np.ndarray, np.ndarray] | None:
    """The genre layer of models/genred-default (for a top-1 agreement), if loadable."""
    import keras

    path = Path(__file__).resolve().parents[1] / "models" / "genred-default" / "model.keras"
    try:
        weights, bias = keras.models.load_model(path, compile=False).get_layer(
            "genre").get_weights()
    except (OSError, ValueError, KeyError) as error:
        _LOGGER.warning("no head for top-1 agreement: %s", error)
        return None
    return weights, bias


def compare(reference: np.ndarray, other: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Max abs difference, cosine and genred-default top-1 agreement of two embeddings."""
    cosine = np.sum(reference * other, 1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1))
    result = {"max_abs_diff": round(float(np.abs(reference - other).max()), 4),
              "max_abs_value": round(float(np.abs(reference).max()), 3),
              "mean_abs_diff": round(float(np.abs(reference - other).mean()), 5),
              "min_cosine": round(float(cosine.min()), 6)}
    head = head_weights()
    if head is not None:
        weights, bias = head
        result["top1_agreement_per_patch"] = round(float(np.mean(
            (reference @ weights).argmax(1) == (other @ weights).argmax(1))), 3)
        clips = sorted(set(names))
        pooled = [np.stack([e[[n == c for n in names]].mean(0) for c in clips])
                  for e in (reference, other)]
        result["top1_agreement_per_window"] = round(float(np.mean(
            (pooled[0] @ weights + bias).argmax(1) == (pooled[1] @ weights + bias).argmax(1))), 3)
        result["n_windows"] = len(clips)
    return result


def run(budget_seconds: float) -> dict[str, Any]:
    """Every measurement; each well under a minute."""
    import tensorflow as tf

    flags = Path("/proc/cpuinfo").read_text().split()
    patches, names = real_patches()
    fp32 = embedding("float32")
    flops = layer_flops(fp32)
    total_gflop = sum(flops.values()) / 1e9
    result: dict[str, Any] = {
        "n_patches": int(patches.shape[0]), "parameters": int(fp32.count_params()),
        "gflop_per_patch": round(total_gflop, 3),
        "gflop_per_patch_by_stage": {k: round(v / 1e9, 3) for k, v in flops.items()},
        "cpu_flags": {flag: flag in flags for flag in ("avx512f", "avx512_bf16", "amx_bf16")},
        "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()],
        "matmul_peak": matmul_peak(budget_seconds), "theoretical": theoretical_peak()}
    result["stages"] = time_batches(stage_cuts(fp32), patches, budget_seconds, (10,))
    call = tf.function(lambda x: fp32(x, training=False), reduce_retracing=True)
    xla = tf.function(lambda x: fp32(x, training=False), jit_compile=True)
    bf16 = embedding("mixed_bfloat16")
    result.update(time_batches({
        "fp32_predict_on_batch": fp32.predict_on_batch,
        "bf16_predict_on_batch": bf16.predict_on_batch,
        "fp32_tf_function": lambda x: call(x).numpy(),
        "fp32_xla": lambda x: xla(x).numpy()}, patches, budget_seconds))
    reference = np.concatenate([fp32.predict_on_batch(patches[i:i + 32])
                                for i in range(0, len(patches), 32)])
    bf16_out = np.concatenate([np.asarray(bf16.predict_on_batch(patches[i:i + 32]), np.float32)
                               for i in range(0, len(patches), 32)])
    result["bf16_vs_fp32"] = compare(reference, bf16_out, names)
    result["matmul_peak_after"] = matmul_peak(budget_seconds)
    peak = max(result["matmul_peak"]["gflops_per_cpu_second"],
               result["matmul_peak_after"]["gflops_per_cpu_second"])
    for key in ("fp32_predict_on_batch", "bf16_predict_on_batch", "fp32_tf_function",
                "fp32_xla"):
        for row in result[key].values():
            row["gflops_per_cpu_second"] = round(total_gflop / (row["cpu_ms_per_patch"] / 1e3), 1)
            row["of_matmul_peak_per_cpu_second"] = round(row["gflops_per_cpu_second"] / peak, 3)
    return result


def main() -> None:
    """Measure and write bench/results/musicnn_profile.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per figure")
    args = parser.parse_args()
    setup_logging()
    write_result("musicnn_profile", run(args.seconds))


if __name__ == "__main__":
    main()
