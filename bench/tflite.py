"""TFLite vs Keras: speed, memory and top-1 agreement of the exported VGG16 model.

The models are the trained VGG16 artifacts given (``--model``, repeatable), else every
``vgg16-bfft`` artifact under models/, otherwise the random-weights one. (The recorded run
passed the shipped model and the five k-fold models of models/README.md's comparison.) Each is
copied to bench/.cache (the original is never written) and exported with ``quantize`` none,
float16 and int8 (dynamic range). Agreement: top-1 of each export vs the Keras model on one
30-s window (the first) of every clip of ../shared/data gtzan-mini and cc-music, pooled over
the models, with the Keras top-1 margin of each disagreement. Speed (batch 1) and memory (RSS
of a fresh process after loading the runtime and predicting) on the first model.

Run: .venv/bin/python -m bench.tflite [--model DIR] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
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
    vgg16_artifact,
    write_result,
)

_LOGGER = logging.getLogger("bench.tflite")
MODES = ("none", "float16", "int8")
SEARCH = (REPO_ROOT / "models",)


def pick_models(explicit: list[str] | None) -> tuple[list[Path], bool]:
    """(artifact folders, trained?): ``explicit``, every trained VGG16 found, or the random one."""
    if explicit:
        return [Path(p) for p in explicit], True
    found = []
    for root in SEARCH:
        for contract in sorted(root.glob("*/contract.json")):
            if json.loads(contract.read_text()).get("model_kind") == "vgg16-bfft":
                found.append(contract.parent)
    return (found, True) if found else ([vgg16_artifact()], False)


def working_copy(folder: Path) -> Path:
    """The artifact's files copied to bench/.cache/tflite-<name> (exports go there)."""
    target = CACHE_DIR / f"tflite-{folder.name}"
    target.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.is_file() and item.suffix not in (".png", ".tflite"):
            shutil.copy2(item, target / item.name)
    return target


def clip_images() -> tuple[list[str], np.ndarray]:
    """The first 30-s BFFT window of every clip (zero-padded when shorter); cached."""
    from models.audio import load_audio
    from models.bfft import DEFAULT_PARAMS, bfft_image

    clips = music_clips()
    cache = CACHE_DIR / "agreement_images.npz"
    names = [str(c.relative_to(c.parents[1])) for c in clips]
    if cache.is_file():
        data = np.load(cache)
        if list(data["names"]) == names:
            return names, data["images"]
    window = DEFAULT_PARAMS.window_samples
    images = []
    for clip in clips:
        samples = load_audio(clip, DEFAULT_PARAMS.sample_rate_hz)[:window]
        samples = np.pad(samples, (0, window - samples.size))
        images.append(bfft_image(samples))
    stacked = np.stack(images)
    np.savez(cache, names=np.array(names), images=stacked)
    return names, stacked


def predict_all(predict, images: np.ndarray, batch: int = 8) -> np.ndarray:
    """Probabilities of every image, ``batch`` at a time."""
    return np.concatenate([predict(images[i:i + batch]) for i in range(0, len(images), batch)])


def seconds_per_window(predict, repeats: int) -> dict[str, float]:
    """Batch-1 latency distribution."""
    image = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    for _ in range(2):
        predict(image)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(image)
        samples.append(time.perf_counter() - started)
    return summarize(samples)


def rss_after_load(folder: Path, mode: str) -> float:
    """RSS in MB of a fresh process that loaded ``mode`` (keras or a TFLite file) and ran it."""
    code = ("import sys, numpy as np\n"
            "from pathlib import Path\n"
            "folder, mode = Path(sys.argv[1]), sys.argv[2]\n"
            "if mode == 'keras':\n"
            "    from models.loader import load_artifact\n"
            "    predict = load_artifact(folder).predict\n"
            "else:\n"
            "    from models.tflite_runtime import TflitePredictor\n"
            "    predict = TflitePredictor(folder / f'model-{mode}.tflite').predict\n"
            "predict(np.zeros((1, 224, 224, 3), np.uint8))\n")
    return child_rss_mb(code, str(folder), mode)


def agreement(folder: Path, images: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement of each export with the Keras model; margins of the disagreements."""
    from models.export import export_tflite
    from models.loader import load_artifact
    from models.tflite_runtime import TflitePredictor

    reference = predict_all(load_artifact(folder).predict, images)
    ranked = np.sort(reference, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    result: dict[str, Any] = {"n": len(images), "median_top1_margin": round(
        float(np.median(margin)), 4)}
    for mode in MODES:
        path = export_tflite(folder, quantize=mode, filename=f"model-{mode}.tflite")
        probabilities = predict_all(TflitePredictor(path).predict, images)
        flips = np.nonzero(probabilities.argmax(1) != reference.argmax(1))[0]
        result[mode] = {"agree": len(images) - len(flips),
                        "flip_margins": [round(float(m), 5) for m in margin[flips]],
                        "max_abs_probability_difference": round(
                            float(np.abs(probabilities - reference).max()), 5)}
    return result


def speed_and_memory(folder: Path, repeats: int) -> dict[str, Any]:
    """Batch-1 seconds per window, RSS and file size of Keras and each export."""
    from models.contract import read_contract
    from models.export import export_tflite
    from models.loader import load_artifact
    from models.tflite_runtime import TflitePredictor

    keras_predict = load_artifact(folder).predict
    result: dict[str, Any] = {"keras": {
        "seconds_per_window": seconds_per_window(keras_predict, repeats),
        "rss_mb": rss_after_load(folder, "keras"),
        "file_mb": round(sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (
            ".keras", ".npz", ".h5") or f.name == read_contract(folder).model_file) / 1e6, 1)}}
    for mode in MODES:
        started = time.monotonic()
        path = export_tflite(folder, quantize=mode, filename=f"model-{mode}.tflite")
        export_seconds = time.monotonic() - started
        predictor = TflitePredictor(path)
        result[f"tflite_{mode}"] = {
            "seconds_per_window": seconds_per_window(predictor.predict, repeats),
            "rss_mb": rss_after_load(folder, mode),
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "export_seconds": round(export_seconds, 1), "threads": predictor.num_threads}
    keras_seconds = result["keras"]["seconds_per_window"]["median"]
    for mode in MODES:
        entry = result[f"tflite_{mode}"]
        entry["speedup"] = round(keras_seconds / entry["seconds_per_window"]["median"], 2)
    return result


def run(models: list[str] | None, repeats: int) -> dict[str, Any]:
    """Speed and memory on the first model; agreement pooled over every model."""
    sources, trained = pick_models(models)
    folders = [working_copy(source) for source in sources]
    names, images = clip_images()
    result: dict[str, Any] = {"models": [str(s) for s in sources], "trained": trained,
                              "n_clips": len(names), "speed_model": str(sources[0])}
    result.update(speed_and_memory(folders[0], repeats))
    per_model = {str(s): agreement(f, images) for s, f in zip(sources, folders, strict=True)}
    result["agreement_per_model"] = per_model
    total = sum(a["n"] for a in per_model.values())
    for mode in MODES:
        agree = sum(a[mode]["agree"] for a in per_model.values())
        margins = [m for a in per_model.values() for m in a[mode]["flip_margins"]]
        result[f"tflite_{mode}"]["top1_agreement"] = round(agree / total, 4)
        result[f"tflite_{mode}"]["largest_flip_margin"] = max(margins, default=None)
        _LOGGER.info("%s: %s", mode, result[f"tflite_{mode}"])
    result["n_windows_compared"] = total
    try:
        import ai_edge_litert  # noqa: F401

        result["interpreter"] = "ai_edge_litert"
    except ImportError:
        result["interpreter"] = "tf.lite.Interpreter"
    return result


def main() -> None:
    """Measure and write bench/results/tflite.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append",
                        help="artifact folder, repeatable (default: every trained VGG16)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    setup_logging()
    write_result("tflite", run(args.model, args.repeats))


if __name__ == "__main__":
    main()
