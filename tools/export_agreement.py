"""Does a patch model's TFLite export agree with its Keras model on real windows?

Every whole 30-s window (one per clip for 30-s clips) of the audio files given (folders
are searched for audio) goes through both runtimes; prints the top-1 outcome agreement
(a genre, or "no music" at p >= 0.5) and the largest probability difference, and exits 1
unless every outcome agrees.

    python -m tools.export_agreement models/genred-default ../shared/data/gtzan-mini \\
        ../shared/data/cc-music
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from training.patch_features import AUDIO_SUFFIXES

_LOGGER = logging.getLogger("export_agreement")


def real_windows(paths: list[Path], rate_hz: int, window_samples: int) -> np.ndarray:
    """(n, 10, 187, 96) patches of every whole window of every file (short files looped)."""
    from models.audio import load_audio
    from models.musicnn.features import window_patches
    from models.musicnn.spec import PARAMS
    from training.slicing import loop_to_window

    files = [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*")))
             if p.suffix.lower() in AUDIO_SUFFIXES]
    windows = []
    for path in files:
        samples = load_audio(path, rate_hz)
        for start in range(0, max(1, samples.size - window_samples + 1), window_samples):
            windows.append(window_patches(loop_to_window(samples[start:], window_samples),
                                          PARAMS))
    return np.stack(windows)


def outcome(outputs: np.ndarray, n_labels: int) -> np.ndarray:
    """Top genre index per row, or n_labels where the no-music probability is >= 0.5."""
    from models.outcome import NO_MUSIC_THRESHOLD, split_outputs

    genres, no_music = split_outputs(outputs, n_labels)
    return np.where(no_music >= NO_MUSIC_THRESHOLD, n_labels, genres.argmax(axis=1))


def main(argv: list[str] | None = None) -> int:
    """Print the agreement; exit 1 on any disagreement."""
    from models.loader import load_model
    from models.musicnn.spec import PARAMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("audio", type=Path, nargs="+")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    windows = real_windows(args.audio, int(PARAMS["input_rate_hz"]),
                           int(PARAMS["window_samples"]))
    keras_model = load_model(args.model_dir, "keras")
    tflite_model = load_model(args.model_dir, "tflite")
    n_labels = len(keras_model.labels)
    reference = np.concatenate([keras_model.predict_outputs(windows[i:i + 8])
                                for i in range(0, len(windows), 8)])
    exported = np.concatenate([tflite_model.predict_outputs(windows[i:i + 8])
                               for i in range(0, len(windows), 8)])
    agree = outcome(reference, n_labels) == outcome(exported, n_labels)
    print(f"{args.model_dir}: {int(agree.sum())}/{agree.size} windows agree on the outcome, "  # noqa: T201
          f"max probability difference {np.abs(reference - exported).max():.2e}")
    return 0 if agree.all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
