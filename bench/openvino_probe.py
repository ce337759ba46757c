"""OpenVINO as a candidate runtime for genred-default (issue 22 item 3): speed and agreement.

Reads the shipped TFLite export of genred-default's per-patch stage (``model.tflite``: one
(187, 96) log-mel patch -> 11 patch logits) with OpenVINO's own TFLite frontend, compiles it
for the CPU with ``INFERENCE_PRECISION_HINT`` f32 and bf16 (bf16 runs natively only with
avx512_bf16 or AMX), for any batch (a dynamic shape) and for a fixed batch of 10, and
compares each with LiteRT's float32 run of the same file on the first 30-s window (10
patches) of every gtzan-mini clip: window top-1 agreement (mean of the 10 patch logits),
patch top-1 agreement, and wall / CPU milliseconds per patch in
batches of 10 on 2 threads (median of 30 calls). Not a test and not a dependency of the
daemon yet: ``pip install 'genred[bench]'`` brings OpenVINO for this script only.

Run: .venv/bin/python -m bench.openvino_probe [--clips N]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import REPO_ROOT, machine, setup_logging, write_result

_LOGGER = logging.getLogger("bench.openvino_probe")
EXPORT = REPO_ROOT / "models" / "genred-default" / "model.tflite"
GTZAN = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini"
THREADS = 2
CALLS = 30


def window_patches(n_clips: int | None) -> np.ndarray:
    """(n_clips, 10, 187, 96): the first window's patches of each gtzan-mini clip."""
    from models.audio import load_audio
    from models.musicnn.streaming import stream_patches

    files = sorted(GTZAN.rglob("*.flac"))[:n_clips]
    if not files:
        raise SystemExit(f"no gtzan-mini clips under {GTZAN}")
    return np.stack([stream_patches(load_audio(f))[:10] for f in files]).astype(np.float32)


def litert_runner() -> Callable[[np.ndarray], np.ndarray]:
    """LiteRT float32 on THREADS threads: (n, 187, 96) -> (n, 11) logits."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(EXPORT), num_threads=THREADS)
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(patches: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(given["index"], patches.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], patches)
        interpreter.invoke()
        return interpreter.get_tensor(taken["index"]).copy()

    return run


def openvino_runner(precision: str, batch: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """OpenVINO on the CPU with ``precision`` (f32 or bf16) and THREADS threads, compiled
    for a fixed ``batch`` of patches (None: any batch, a dynamic shape)."""
    import openvino

    core = openvino.Core()
    model = core.read_model(str(EXPORT))
    if batch is not None:
        model.reshape([batch, 187, 96])
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": THREADS})
    request = compiled.create_infer_request()
    output = compiled.output(0)
    return lambda patches: request.infer({0: patches})[output].copy()


def measure(run: Callable[[np.ndarray], np.ndarray], windows: np.ndarray,
            reference: np.ndarray | None) -> dict[str, Any]:
    """Logits of every window, agreement with ``reference`` and per-patch times."""
    logits = np.stack([run(window) for window in windows])
    walls, cpus = [], []
    for call in range(CALLS):
        wall, cpu = time.perf_counter(), time.process_time()
        run(windows[call % len(windows)])
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    n_patches = windows.shape[1]
    figures: dict[str, Any] = {
        "wall_ms_per_patch": round(1000 * float(np.median(walls)) / n_patches, 2),
        "cpu_ms_per_patch": round(1000 * float(np.median(cpus)) / n_patches, 2)}
    if reference is not None:
        figures["windows_agreeing"] = int(np.sum(logits.mean(1).argmax(1)
                                                 == reference.mean(1).argmax(1)))
        figures["patches_agreeing"] = int(np.sum(logits.argmax(2) == reference.argmax(2)))
        figures["max_abs_logit_difference"] = round(float(np.abs(logits - reference).max()), 4)
    return {"logits": logits, "figures": figures}


def main(argv: list[str] | None = None) -> int:
    """Measure LiteRT and OpenVINO f32/bf16; write bench/results/openvino_probe.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=None, help="first N gtzan-mini clips")
    args = parser.parse_args(argv)
    setup_logging()
    windows = window_patches(args.clips)
    reference = measure(litert_runner(), windows, None)
    result: dict[str, Any] = {"machine": machine(), "windows": int(windows.shape[0]),
                              "threads": THREADS, "litert_float32": reference["figures"]}
    for precision in ("f32", "bf16"):
        for batch in (None, windows.shape[1]):
            name = f"openvino_{precision}_" + ("dynamic_batch" if batch is None
                                               else f"batch_{batch}")
            result[name] = measure(openvino_runner(precision, batch), windows,
                                   reference["logits"])["figures"]
            _LOGGER.info("%s: %s", name, result[name])
    _LOGGER.info("litert float32: %s", result["litert_float32"])
    write_result("openvino_probe", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
