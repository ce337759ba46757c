"""CPU cost of the musicnn-mel front-end per source per 2-s hop: streamed vs per window.

Streamed: :class:`StreamingMusicnnMel` fed 44.1 kHz chunks (as a source delivers them); the cost
of a hop is the CPU time of the pushes that cover its 88,200 samples. Per window: today's
``window_patches`` (resample the 30-s window, recompute its ten patches) once per hop.

Run: PYTHONPATH=. python -m bench.musicnn_streaming [--seconds 120] [--chunk 4096]
(writes bench/results/musicnn_streaming.json)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as a daemon source sees it

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import setup_logging, summarize, write_result  # noqa: E402
from models.musicnn.features import window_patches  # noqa: E402
from models.musicnn.streaming import StreamingMusicnnMel  # noqa: E402

_LOGGER = logging.getLogger("bench.musicnn_streaming")
RATE_HZ = 44100
HOP_SAMPLES = 2 * RATE_HZ
WINDOW_SAMPLES = 1322944


def music_like(n_samples: int, seed: int = 0) -> np.ndarray:
    """Deterministic test audio: tones plus noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / RATE_HZ
    tones = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 1250.0, 3300.0))
    return (tones + 0.05 * rng.standard_normal(n_samples)).astype(np.float32)


def streamed_hop_seconds(samples: np.ndarray, chunk_samples: int) -> list[float]:
    """CPU seconds per 2-s hop of pushing ``samples`` in chunks (warm-up hop dropped)."""
    frontend = StreamingMusicnnMel()
    per_hop: list[float] = []
    spent = 0.0
    for start in range(0, samples.shape[0], chunk_samples):
        began = time.thread_time()
        frontend.push(samples[start:start + chunk_samples])
        spent += time.thread_time() - began
        if (start + chunk_samples) // HOP_SAMPLES > len(per_hop):
            per_hop.append(spent)
            spent = 0.0
    return per_hop[1:]


def window_hop_seconds(samples: np.ndarray, n_hops: int) -> list[float]:
    """CPU seconds of today's per-window feature computation, one window per hop."""
    seconds = []
    for hop in range(n_hops):
        window = samples[hop * HOP_SAMPLES:hop * HOP_SAMPLES + WINDOW_SAMPLES]
        began = time.thread_time()
        window_patches(window)
        seconds.append(time.thread_time() - began)
    return seconds


def main() -> None:
    """Measure and write bench/results/musicnn_streaming.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="audio per run")
    parser.add_argument("--runs", type=int, default=5, help="independent streamed runs")
    parser.add_argument("--chunks", default="1024,4096,88200", help="chunk sizes in samples")
    args = parser.parse_args()
    setup_logging()
    samples = music_like(int(args.seconds * RATE_HZ))
    result: dict = {"hop_seconds": HOP_SAMPLES / RATE_HZ, "audio_seconds": args.seconds,
                    "threads": 1, "streamed_ms_per_hop": {}}
    for chunk in (int(c) for c in args.chunks.split(",")):
        runs = [streamed_hop_seconds(samples, chunk) for _ in range(args.runs)]
        hops_ms = np.concatenate(runs) * 1e3
        result["streamed_ms_per_hop"][str(chunk)] = {
            "mean": round(float(hops_ms.mean()), 4),
            "median_of_run_means": round(float(np.median([np.mean(r) for r in runs]) * 1e3), 4),
            **summarize(hops_ms, 4)}
        _LOGGER.info("streamed, chunk %d: mean %.3f ms, median %.3f ms per hop (load %s)",
                     chunk, hops_ms.mean(), np.median(hops_ms), os.getloadavg()[0])
    per_window_ms = np.array(window_hop_seconds(samples, 8)) * 1e3
    result["per_window_ms_per_hop"] = summarize(per_window_ms, 3)
    _LOGGER.info("per window: median %.1f ms per hop", np.median(per_window_ms))
    write_result("musicnn_streaming", result)


if __name__ == "__main__":
    main()
