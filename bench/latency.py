"""End-to-end latency: last sample of a window into the daemon -> its prediction at a client.

The daemon runs as a subprocess (``genred run``) with one ``tcp`` PCM source. This process
feeds real music to it at real-time pace (after a fast 25-s pre-roll, so the 30-s warm-up
takes seconds) and remembers when each chunk was sent; a WebSocket client in the same
process notes when each prediction arrives. A prediction's ``window_end_ms`` names its
window: its last sample is ``end_sample - 1`` with ``end_sample`` a whole number of time
bins, so latency = arrival - send time of the chunk holding that sample (one clock). For the
default model (``--model default``) a window ends on the patch grid and is due once its newest
patch is complete (``patch_ready_samples``: 0.6 ms of resampler look-ahead past the patch);
latency counts from the chunk holding that last needed sample.

Run: .venv/bin/python -m bench.latency [--windows 100] [--hop 1.0] [--runtime keras]
     [--model vgg16|default]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from typing import Any

import numpy as np
import websockets

from bench.common import (
    MODELS,
    RESULTS_DIR,
    bench_model,
    daemon_process,
    model_hop_seconds,
    music_clips,
    setup_logging,
    summarize,
    write_result,
)
from daemon.harness import free_port, http_get, metric
from models.bfft import DEFAULT_PARAMS

_LOGGER = logging.getLogger("bench.latency")
RATE = DEFAULT_PARAMS.sample_rate_hz
CHUNK = 1024
PREROLL_SECONDS = 25.0
WARMUP_WINDOWS = 3
DEFAULT_MODEL_GOAL_SECONDS = 0.060


def bench_audio(seconds: float) -> np.ndarray:
    """Real clips from ../shared/data end to end (synthetic tones if there are none)."""
    from models.audio import load_audio

    parts, total = [], 0
    for clip in music_clips()[::7]:
        parts.append(load_audio(clip, RATE))
        total += parts[-1].size
        if total >= seconds * RATE:
            break
    if not parts:
        from bench.frontend import music_like

        return music_like(int(seconds * RATE))
    audio = np.concatenate(parts)
    return np.resize(audio, int(seconds * RATE)).astype(np.float32)


class Feeder:
    """Sends PCM at real-time pace and records each chunk's (end sample, send time)."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio
        self.chunk_ends: list[int] = []
        self.send_times: list[float] = []

    async def run(self, port: int) -> None:
        """Pre-roll, then one CHUNK every CHUNK/RATE seconds until the audio ends."""
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        preroll = int(PREROLL_SECONDS * RATE)
        writer.write(self.audio[:preroll].tobytes())
        await writer.drain()
        start, t0 = preroll, time.perf_counter()
        while start < self.audio.size:
            end = min(start + CHUNK, self.audio.size)
            due = t0 + (end - preroll) / RATE
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            writer.write(self.audio[start:end].tobytes())
            self.chunk_ends.append(end)
            self.send_times.append(time.perf_counter())
            start = end
        writer.close()

    def sent_at(self, sample: int) -> float | None:
        """Send time of the chunk holding ``sample`` (None: pre-roll)."""
        index = int(np.searchsorted(self.chunk_ends, sample, side="right"))
        return self.send_times[index] if index < len(self.send_times) else None


def last_needed_sample(window_end_ms: int, model: str) -> int:
    """The last sample the window's prediction needs (its end, or its newest patch's ready)."""
    if model == "default":
        from models.musicnn.streaming import patch_ready_samples, patch_start_sample

        k = round(window_end_ms * RATE / 1000 / patch_start_sample(1)) - 1
        return patch_ready_samples(k) - 1
    spb = DEFAULT_PARAMS.samples_per_bin
    return round(window_end_ms * RATE / 1000 / spb) * spb - 1


async def collect(ws_port: int, feeder: Feeder, n_windows: int,
                  model: str = "vgg16") -> list[tuple[int, float]]:
    """(last needed sample, arrival time) of the first ``n_windows`` predictions."""
    arrivals: list[tuple[int, float]] = []
    async with websockets.connect(f"ws://127.0.0.1:{ws_port}/", max_size=None) as ws:
        while len(arrivals) < n_windows:
            text = await ws.recv()
            now = time.perf_counter()
            event = json.loads(text)
            if event["type"] == "prediction" and feeder.send_times:
                arrivals.append((last_needed_sample(event["window_end_ms"], model), now))
    return arrivals


async def measure(ws_port: int, pcm_port: int, n_windows: int, hop: float,
                  model: str = "vgg16") -> dict[str, Any]:
    """Feed and listen concurrently; latency per window in seconds."""
    hop = model_hop_seconds(model, hop)  # the daemon's rounding (2.992-s patches by default)
    seconds = PREROLL_SECONDS + 10 + (n_windows + WARMUP_WINDOWS + 5) * hop
    feeder = Feeder(bench_audio(seconds))
    feed = asyncio.create_task(feeder.run(pcm_port))
    arrivals = await asyncio.wait_for(
        collect(ws_port, feeder, n_windows + WARMUP_WINDOWS, model), seconds + 120)
    feed.cancel()
    latencies = []
    for last_sample, arrived in arrivals:
        sent = feeder.sent_at(last_sample)
        if sent is not None:
            latencies.append(arrived - sent)
    return {"first_window_seconds": round(latencies[0], 4),
            "latency_seconds": summarize(latencies[WARMUP_WINDOWS:])}


def run(n_windows: int, hop: float, runtime: str, quantize: str = "none",
        model: str = "vgg16") -> dict[str, Any]:
    """Start the daemon, measure, read its inference histogram."""
    ws_port, pcm_port = free_port(), free_port()
    config = {"model": str(bench_model(model, runtime, quantize)), "log_level": "warning",
              "sources": [{"name": "pcm", "kind": "tcp", "port": pcm_port,
                           "sample_rate_hz": RATE, "pcm_format": "f32le"}],
              "window": {"hop_seconds": hop}, "inference": {"runtime": runtime}}
    with daemon_process(config, ws_port, "latency"):
        result = asyncio.run(measure(ws_port, pcm_port, n_windows, hop, model))
        text = http_get(ws_port, "/metrics")
    count = metric(text, "genred_inference_seconds_count")
    result["daemon_inference_seconds_mean"] = round(
        metric(text, "genred_inference_seconds_sum") / max(count, 1), 4)
    result["daemon_windows_dropped"] = metric(text, "genred_windows_dropped_total")
    if model == "default":  # issue 12's goal for the default model at one source
        result["goal_seconds"] = DEFAULT_MODEL_GOAL_SECONDS
    else:
        batch1 = _batch1_seconds(runtime) or result["daemon_inference_seconds_mean"]
        result["batch1_inference_seconds"] = batch1
        result["goal_seconds"] = round(1.25 * batch1 + 0.030, 4)
    result["goal_met"] = result["latency_seconds"]["p99"] <= result["goal_seconds"]
    result.update({"runtime": runtime, "quantize": quantize if runtime == "tflite" else None,
                   "model": model, "hop_seconds": model_hop_seconds(model, hop),
                   "chunk_samples": CHUNK, "load_average_1min": round(os.getloadavg()[0], 2)})
    _LOGGER.info("latency median %.3f s, p99 %.3f s (goal %.3f s)",
                 result["latency_seconds"]["median"], result["latency_seconds"]["p99"],
                 result["goal_seconds"])
    return result


def _batch1_seconds(runtime: str) -> float | None:
    """Batch-1 median of bench/results/inference[_tflite].json, if measured."""
    path = RESULTS_DIR / ("inference.json" if runtime == "keras" else "inference_tflite.json")
    if not path.is_file():
        return None
    return json.loads(path.read_text())["seconds_per_window"]["1"]["median"]


def main() -> None:
    """Measure and write bench/results/latency[_<runtime>].json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--runtime", choices=("keras", "tflite"), default="keras")
    parser.add_argument("--quantize", choices=("none", "float16", "int8"), default="none")
    parser.add_argument("--model", choices=MODELS, default="vgg16")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    setup_logging()
    result = run(args.windows, args.hop, args.runtime, args.quantize, args.model)
    write_result(args.name or ("latency" if args.runtime == "keras" else "latency_tflite"),
                 result)


if __name__ == "__main__":
    main()
