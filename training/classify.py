"""``genred classify``: whole-song genre by majority vote over 30-s slices (as the report)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.audio import AudioDecodeError, load_audio
from models.bfft import DEFAULT_PARAMS
from models.features import BfftExtractor, FeatureExtractor, make_extractor
from training.errors import InputError
from training.metrics import vote
from training.slicing import MIN_PAD_SECONDS, plan_slices

_LOGGER = logging.getLogger(__name__)

PREDICT_BATCH = 8
HOP_SNAP_SECONDS = 0.01


def slice_images(samples: np.ndarray, hop_seconds: float, source: str,
                 extractor: FeatureExtractor | None = None) -> tuple[list, np.ndarray]:
    """(slice starts in samples, model inputs) of a decoded song, by the dataset slicing rules."""
    rate_hz, window = DEFAULT_PARAMS.sample_rate_hz, DEFAULT_PARAMS.window_samples
    hop_samples = round(hop_seconds * rate_hz)
    if abs(hop_samples - window) <= HOP_SNAP_SECONDS * rate_hz:
        hop_samples = window  # "30 s" means consecutive windows (one window is 29.999 s)
    plan = plan_slices(samples.shape[0], hop_samples=hop_samples, allow_short=True)
    if not plan.starts:
        raise AudioDecodeError(source, "no audio samples")
    if plan.padded and samples.shape[0] < MIN_PAD_SECONDS * rate_hz:
        _LOGGER.warning("%s is %.1f s, shorter than one window: classified on zero-padded audio",
                        source, samples.shape[0] / rate_hz)
    extractor = extractor or BfftExtractor(DEFAULT_PARAMS)
    images = np.stack([extractor.offline(samples[s:s + window]) for s in plan.starts])
    return list(plan.starts), images


def classify_song(loaded, path: str, hop_seconds: float = 30.0) -> dict:
    """Genre of one file: per-slice probabilities, then the majority genre."""
    samples = load_audio(path, DEFAULT_PARAMS.sample_rate_hz)
    extractor = make_extractor(loaded.contract.frontend_name, loaded.contract.frontend_params)
    starts, images = slice_images(samples, hop_seconds, path, extractor)
    probabilities = np.concatenate([loaded.predict(images[i:i + PREDICT_BATCH])
                                    for i in range(0, len(images), PREDICT_BATCH)])
    labels = list(loaded.labels)
    winner = vote(probabilities)
    predicted = probabilities.argmax(axis=1)
    return {
        "file": path,
        "genre": labels[winner],
        "votes": int(np.sum(predicted == winner)),
        "n_slices": len(starts),
        "seconds": round(samples.shape[0] / DEFAULT_PARAMS.sample_rate_hz, 3),
        "mean_probabilities": _named(probabilities.mean(axis=0), labels),
        "slices": [{"index": i, "start_seconds": round(s / DEFAULT_PARAMS.sample_rate_hz, 3),
                    "genre": labels[predicted[i]],
                    "probabilities": _named(probabilities[i], labels)}
                   for i, s in enumerate(starts)],
    }


def _named(values: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Probabilities keyed by label, rounded for output."""
    return {label: round(float(value), 4) for label, value in zip(labels, values, strict=True)}


def format_song(result: dict) -> str:
    """Readable lines of one song: the verdict, then each slice with its top-3 genres."""
    mean = result["mean_probabilities"][result["genre"]]
    lines = [f"{result['file']}: {result['genre']} ({result['votes']}/{result['n_slices']} "
             f"slices, mean p {mean:.2f})"]
    for item in result["slices"]:
        top = sorted(item["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        ranked = "  ".join(f"{label} {p:.2f}" for label, p in top)
        lines.append(f"  s{item['index']:02d} @ {item['start_seconds']:7.1f} s  {ranked}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler of ``genred classify``; exit status 1 when any file failed."""
    from models.loader import load_artifact

    if not args.hop_seconds > 0:
        raise InputError("--hop-seconds must be > 0")
    loaded = load_artifact(Path(args.model_dir))
    results, failed = [], 0
    for path in tqdm(args.files, desc="classifying", unit="file", disable=len(args.files) < 2):
        try:
            results.append(classify_song(loaded, path, args.hop_seconds))
        except AudioDecodeError as error:
            failed += 1
            print(f"genred classify: error: {error}", file=sys.stderr)
            results.append({"file": path, "error": str(error)})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(format_song(r) for r in results if "error" not in r))
    return 1 if failed else 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``classify`` on an argparse subparsers object."""
    parser = subparsers.add_parser("classify", help="genre of whole songs (slice majority vote)",
                                   description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model artifact folder")
    parser.add_argument("files", metavar="FILE", nargs="+", help="audio files or URLs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--hop-seconds", type=float, default=30.0,
                        help="seconds between slice starts (30 = consecutive windows)")
    parser.set_defaults(handler=run)
    return parser
