"""TFLite vs Keras for the default model (musicnn-patch-head): speed, memory, agreement.

``genred export`` writes the default model's per-patch stage (log-mel patch -> head logits);
the TFLite runtime pools each window as the Keras window model does. A working copy of the
artifact in bench/.cache is exported with ``quantize`` none, float16 and int8 (dynamic range).
Agreement: the window outcome (top genre, or "no music" at p >= 0.5) of each export vs Keras on
every consecutive 30-s window of ../shared/data gtzan-mini (one per clip) and cc-music (the
last one zero-padded). Speed: ms per window (10 patches, one call) and per patch in the
streaming form (one patch per call); memory: RSS of a fresh process that loaded the runtime
and predicted one window.

Run: .venv/bin/python -m bench.tflite_default [--repeats 10]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    CACHE_DIR,
    REPO_ROOT,
    child_rss_mb,
    music_clips,
    setup_logging,
    summarize,
    write_result,
)
from bench.tflite import working_copy

_LOGGER = logging.getLogger("bench.tflite_default")
MODEL = REPO_ROOT / "models" / "genred-default"
MODES = ("none", "float16", "int8")
WINDOW_SAMPLES = 1_323_000


def clip_windows() -> tuple[list[str], np.ndarray]:
    """(names, (n, 10, 187, 96) patches): every whole 30-s window of every clip; cached."""
    from models.audio import load_audio
    from models.musicnn.features import window_patches
    from models.musicnn.spec import PARAMS

    cache = CACHE_DIR / "agreement_musicnn_windows.npz"
    clips = music_clips()
    if cache.is_file():
        data = np.load(cache)
        return list(data["names"]), data["windows"]
    names, windows = [], []
    for clip in clips:
        samples = load_audio(clip, PARAMS["input_rate_hz"])
        for start in range(0, max(1, samples.size - WINDOW_SAMPLES + 1), WINDOW_SAMPLES):
            piece = samples[start:start + WINDOW_SAMPLES]
            piece = np.pad(piece, (0, WINDOW_SAMPLES - piece.size))
            names.append(f"{clip.name}@{start // PARAMS['input_rate_hz']}s")
            windows.append(window_patches(piece, PARAMS))
    stacked = np.stack(windows).astype(np.float32)
    np.savez(cache, names=np.array(names), windows=stacked)
    return names, stacked


def outcomes(outputs: np.ndarray) -> np.ndarray:
    """Per window: the top genre's index, or -1 for 'no music' (last output >= 0.5)."""
    return np.where(outputs[:, -1] >= 0.5, -1, outputs[:, :-1].argmax(axis=1))


def predict_all(loaded, windows: np.ndarray) -> np.ndarray:
    """Outputs of every window, one window per call (as ``genred classify``)."""
    return np.concatenate([loaded.predict_outputs(windows[i:i + 1]) for i in range(len(windows))])


def timings(calls: dict[str, Any], batch: np.ndarray, repeats: int) -> dict[str, Any]:
    """Milliseconds per call of each variant, variants alternated call by call (paired under
    load), after 2 warm-up calls each."""
    for call in calls.values():
        for _ in range(2):
            call(batch)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call(batch)
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: summarize(values, digits=2) for name, values in samples.items()}


def rss_after_load(folder: Path, runtime: str) -> float:
    """RSS in MB of a fresh process that loaded ``runtime`` and predicted one window."""
    code = ("import sys, numpy as np\n"
            "from models.loader import load_model\n"
            "loaded = load_model(sys.argv[1], sys.argv[2])\n"
            "loaded.predict_outputs(np.zeros((1, 10, 187, 96), np.float32))\n")
    return child_rss_mb(code, str(folder), runtime)


def export_all(folder: Path) -> dict[str, Any]:
    """Each quantize mode exported and loaded: {mode: LoadedModel}; RSS and size noted."""
    from models.export import export_tflite
    from models.loader import load_model

    loaded: dict[str, Any] = {}
    for mode in MODES:
        export_tflite(folder, quantize=mode, filename=f"model-{mode}.tflite")
        loaded[mode] = load_model(folder, "tflite")
    return loaded


def run(repeats: int) -> dict[str, Any]:
    """Keras reference and each export: agreement, then alternated speed, then memory."""
    from models.contract import read_contract, update_contract
    from models.loader import load_model
    from models.patch_head import patch_logits_model

    folder = working_copy(MODEL)
    names, windows = clip_windows()
    keras_model = load_model(folder, "keras")
    reference = predict_all(keras_model, windows)
    exports = export_all(folder)
    result: dict[str, Any] = {"model": MODEL.name, "n_windows": len(names), "keras": {}}
    for mode, loaded in exports.items():
        outputs = predict_all(loaded, windows)
        flips = np.nonzero(outcomes(outputs) != outcomes(reference))[0]
        result[f"tflite_{mode}"] = {
            "file_mb": round((folder / f"model-{mode}.tflite").stat().st_size / 1e6, 1),
            "outcome_agreement": round(1 - len(flips) / len(names), 4),
            "flips": [names[i] for i in flips],
            "max_abs_probability_difference": float(f"{np.abs(outputs - reference).max():.3g}"),
            "describe": loaded.predictor.describe()}
    keras_stage = patch_logits_model(keras_model.model)[0].predict_on_batch
    variants = {"keras": (keras_model.predict_outputs, keras_stage)}
    variants.update({f"tflite_{mode}": (loaded.predict_outputs, loaded.predictor.encode)
                     for mode, loaded in exports.items()})
    per_window = timings({k: v[0] for k, v in variants.items()}, windows[:1], repeats)
    per_patch = timings({k: v[1] for k, v in variants.items()}, windows[0, :1], repeats * 5)
    for name in variants:
        result[name]["ms_per_window"] = per_window[name]
        result[name]["ms_per_patch_streaming"] = per_patch[name]
    result["keras"]["rss_mb"] = rss_after_load(folder, "keras")
    note = read_contract(folder).extra["tflite"]
    for mode in MODES:  # the contract notes the last export: point it at each in turn
        update_contract(folder, extra={"tflite": {**note, "file": f"model-{mode}.tflite"}})
        result[f"tflite_{mode}"]["rss_mb"] = rss_after_load(folder, "tflite")
        _LOGGER.info("%s: %s", mode, result[f"tflite_{mode}"])
    return result


def main() -> None:
    """Measure and write bench/results/tflite_default.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    setup_logging()
    write_result("tflite_default", run(args.repeats))


if __name__ == "__main__":
    main()
