"""Keras precision option: float32 vs bfloat16 vs float16 speed and top-1 agreement on real windows.

genred-default: one 30-s window (10 musicnn patches, ``window_patches``) of the first
``--clips-per-genre`` gtzan-mini clips of every genre; per variant the window model's
probabilities (top-1 agreement with float32, max abs probability difference) and the patch
head's logits per patch (stage models, the daemon's path). genred-vgg16-bfft: the first BFFT
window of ``--vgg-clips`` clips (``--vgg-clips`` / 10 per genre). Speed: ms per window at
batch 1 and 8 (and ms per patch through the daemon's patch encoder + head at 8 patches), wall
and CPU time (all threads), variants alternated over ``--rounds`` rounds, medians; the 1-min
load average with each.

Run: flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python -m bench.precision
(writes bench/results/precision.json)
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

from bench.common import REPO_ROOT, SHARED_DATA, setup_logging, write_result

_LOGGER = logging.getLogger("bench.precision")
BATCHES = (1, 8)
PATCH_BATCH = 8


def clips(per_genre: int) -> list[Path]:
    """The first ``per_genre`` gtzan-mini clips of every genre."""
    found = []
    for genre in sorted(p for p in (SHARED_DATA / "gtzan-mini").iterdir() if p.is_dir()):
        found += sorted(genre.glob("*.flac"))[:per_genre]
    if not found:
        raise SystemExit(f"no clips under {SHARED_DATA / 'gtzan-mini'}")
    return found


def musicnn_windows(paths: list[Path]) -> np.ndarray:
    """(n, 10, 187, 96): the first 30-s window of each clip (zero-padded when shorter)."""
    from models.audio import load_audio
    from models.musicnn.features import window_patches

    return np.stack([window_patches(load_audio(path)) for path in paths])


def bfft_windows(paths: list[Path]) -> np.ndarray:
    """(n, 224, 224, 3): the first BFFT window of each clip."""
    from models.audio import load_audio
    from models.bfft import bfft_image

    return np.stack([bfft_image(load_audio(path)) for path in paths]).astype(np.float32)


def load_avg() -> float:
    """The 1-min load average."""
    return round(os.getloadavg()[0], 2)


def timed(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``calls`` calls."""
    wall, cpu = [], []
    for _ in range(calls):
        began, began_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def speed(calls: dict[str, dict[str, tuple[Callable[[], Any], int]]], rounds: int,
          calls_per_round: int) -> dict[str, Any]:
    """ms per item of each variant and case (case -> (call, items per call)), alternated."""
    for cases in calls.values():  # warm-up: tracing per input shape
        for call, _ in cases.values():
            call()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    loads = []
    for _ in range(rounds):
        for variant, cases in calls.items():
            for case, (call, items) in cases.items():
                wall, cpu = timed(call, calls_per_round)
                samples.setdefault((variant, case), []).append((wall / items, cpu / items))
        loads.append(load_avg())
        _LOGGER.info("round done, load %.2f", loads[-1])
    result: dict[str, Any] = {"load_per_round": loads}
    for (variant, case), values in samples.items():
        wall_ms, cpu_ms = (float(v) * 1e3 for v in np.median(values, axis=0))
        result.setdefault(variant, {})[case] = {"ms": round(wall_ms, 2),
                                                "cpu_ms": round(cpu_ms, 2)}
    for variant in calls:
        for case, row in result[variant].items():
            row["speedup_vs_float32"] = round(result["float32"][case]["ms"] / row["ms"], 3)
            row["cpu_speedup_vs_float32"] = round(
                result["float32"][case]["cpu_ms"] / row["cpu_ms"], 3)
    return result


def agreement(reference: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement, flips with their float32 top-1 margin, max abs difference."""
    ranked = np.sort(reference, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    flips = np.nonzero(outputs.argmax(1) != reference.argmax(1))[0]
    return {"n": int(len(reference)), "agree": int(len(reference) - len(flips)),
            "top1_agreement": round(1 - len(flips) / len(reference), 4),
            "flip_margins": [round(float(m), 4) for m in margin[flips]],
            "max_abs_difference": round(float(np.abs(outputs - reference).max()), 5)}


def in_batches(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
               batch: int = 8) -> np.ndarray:
    """``predict`` over ``x`` in batches, float32."""
    return np.concatenate([np.asarray(predict(x[i:i + batch]), np.float32)
                           for i in range(0, len(x), batch)])


def bench_default(precisions: list[str], per_genre: int, rounds: int) -> dict[str, Any]:
    """genred-default: agreement per window and per patch; speed per window and per patch."""
    from models.loader import load_model
    from models.patch_serving import patch_serving

    paths = clips(per_genre)
    windows = musicnn_windows(paths)
    patches = windows.reshape(-1, *windows.shape[2:])
    result: dict[str, Any] = {"n_windows": len(windows), "n_patches": len(patches),
                              "clips": [p.name for p in paths]}
    calls: dict[str, dict[str, tuple[Callable[[], Any], int]]] = {}
    outputs, logits = {}, {}
    for precision in precisions:
        loaded = load_model(REPO_ROOT / "models" / "genred-default", precision=precision)
        encode = patch_serving(loaded).encode
        outputs[precision] = in_batches(loaded.predict_outputs, windows)
        logits[precision] = in_batches(encode, patches, 16)
        calls[precision] = {
            **{f"window_batch{b}": (lambda b=b, f=loaded.predict_outputs: f(windows[:b]), b)
               for b in BATCHES},
            f"patch_batch{PATCH_BATCH}": (lambda f=encode: f(patches[:PATCH_BATCH]), PATCH_BATCH)}
        _LOGGER.info("genred-default %s: %s", precision, loaded.predictor.describe())
    for precision in precisions[1:]:
        result[precision] = {"per_window": agreement(outputs["float32"], outputs[precision]),
                             "per_patch_logits": agreement(logits["float32"], logits[precision])}
        _LOGGER.info("genred-default %s agreement %s", precision, result[precision])
    result["speed"] = speed(calls, rounds, 3)
    return result


def bench_vgg(precisions: list[str], n_clips: int, rounds: int) -> dict[str, Any]:
    """genred-vgg16-bfft: agreement on a few windows; speed at batch 1 and 8."""
    from models.loader import load_model

    paths = clips(-(-n_clips // 10))[:n_clips]  # n_clips / 10 per genre
    images = bfft_windows(paths)
    result: dict[str, Any] = {"n_windows": len(images), "clips": [p.name for p in paths]}
    calls: dict[str, dict[str, tuple[Callable[[], Any], int]]] = {}
    outputs = {}
    batch8 = np.resize(images, (8, *images.shape[1:]))
    for precision in precisions:
        loaded = load_model(REPO_ROOT / "models" / "genred-vgg16-bfft", precision=precision)
        outputs[precision] = in_batches(loaded.predict_outputs, images)
        calls[precision] = {"window_batch1": (lambda f=loaded.predict_outputs: f(images[:1]), 1),
                            "window_batch8": (lambda f=loaded.predict_outputs: f(batch8), 8)}
    for precision in precisions[1:]:
        result[precision] = {"per_window": agreement(outputs["float32"], outputs[precision])}
        _LOGGER.info("vgg16 %s agreement %s", precision, result[precision])
    result["speed"] = speed(calls, rounds, 2)
    return result


def main() -> None:
    """Measure and write bench/results/precision.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-genre", type=int, default=10)
    parser.add_argument("--vgg-clips", type=int, default=20, help="0: skip VGG16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "float16"])
    args = parser.parse_args()
    setup_logging()
    flags = set(Path("/proc/cpuinfo").read_text().split())
    result: dict[str, Any] = {
        "cpu_flags": {flag: flag in flags for flag in ("avx512f", "avx512_bf16", "amx_bf16",
                                                        "avx512_fp16")},
        "load_before": load_avg(),
        "genred_default": bench_default(args.precisions, args.clips_per_genre, args.rounds)}
    if args.vgg_clips:
        result["genred_vgg16_bfft"] = bench_vgg(args.precisions, args.vgg_clips, args.rounds)
    result["load_after"] = load_avg()
    write_result("precision", result)


if __name__ == "__main__":
    main()
