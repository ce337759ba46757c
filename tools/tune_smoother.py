"""Choose smoother defaults by measurement: label flicker vs. switching lag on real music.

Builds sequences "genre A for N clips, then genre B for N clips" from gtzan-mini, embeds
every hop-spaced 30-s window with musicnn, classifies it with a softmax head fitted on the
dataset's other clips (never the sequence's own: held-out probabilities, as live music
would give), then replays the probabilities through Smoother configurations and reports,
per configuration: label changes per minute while the true genre is steady (flicker),
seconds from the true switch until the label stays B (lag), and the share of hops whose
label is the genre of the window's centre.

Usage: python -m tools.tune_smoother DATA_DIR GTZAN_DIR [--pairs 8] [--clips 2]
(DATA_DIR: a `genred dataset build` of GTZAN_DIR on which `genred train-head` has run.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from daemon.smoother import Smoother, SmoothingConfig
from models.audio import load_audio
from models.musicnn.spec import PARAMS
from models.musicnn_head import window_embeddings
from training.head import EMBEDDINGS_FILE
from training.linear import SoftmaxModel, fit_softmax
from training.manifest import genres_of, read_manifest

_LOGGER = logging.getLogger("tune_smoother")
HOP_SECONDS = 2.009


def held_out_head(data_dir: Path, exclude: set[str]) -> tuple[SoftmaxModel, list[str]]:
    """Softmax head on the cached clip embeddings of every clip not in ``exclude``."""
    rows = read_manifest(data_dir)
    genres = genres_of(rows)
    cache = np.load(data_dir / EMBEDDINGS_FILE)
    kept = [r for r in rows if r.source not in exclude]
    features = np.stack([cache[r.png] for r in kept])
    labels = np.array([genres.index(r.genre) for r in kept])
    return fit_softmax(features, labels, len(genres), l2=0.1), genres


def sequence_probabilities(head: SoftmaxModel, first: list[Path], second: list[Path]) -> tuple:
    """(probabilities, window centres, window ends, switch time) of one A->B sequence, in s."""
    rate = PARAMS["input_rate_hz"]
    audio_a = np.concatenate([load_audio(p) for p in first])
    audio = np.concatenate([audio_a, *[load_audio(p) for p in second]])
    window, hop = PARAMS["window_samples"], round(HOP_SECONDS * rate)
    ends = np.arange(window, audio.shape[0] + 1, hop)
    embeddings = np.stack([window_embeddings(audio[e - window:e]) for e in ends])
    centres = (ends - window / 2) / rate
    return head.predict_proba(embeddings), centres, ends / rate, audio_a.shape[0] / rate


def replay(config: SmoothingConfig, sequences: list[dict], n_labels: int) -> dict:
    """Flicker, lag and accuracy of one configuration over all sequences."""
    flicker_changes, steady_minutes, lags, correct, total = 0, 0.0, [], 0, 0
    for seq in sequences:
        smoother = Smoother(n_labels, config)
        labels = [smoother.update(p).label_index for p in seq["probabilities"]]
        truth = np.where(seq["centres"] < seq["switch"], seq["a"], seq["b"])
        correct += int(np.sum(np.array(labels) == truth))
        total += len(labels)
        steady = (seq["ends"] < seq["switch"]) | (seq["ends"] - 30 > seq["switch"])
        changes = np.flatnonzero(np.diff(labels)) + 1
        flicker_changes += int(np.sum(steady[changes]))
        steady_minutes += steady.sum() * HOP_SECONDS / 60
        after = [i for i in range(len(labels)) if seq["ends"][i] > seq["switch"]
                 and all(x == seq["b"] for x in labels[i:])]
        lags.append(seq["ends"][after[0]] - seq["switch"] if after else np.nan)
    return {"flicker_per_minute": flicker_changes / max(steady_minutes, 1e-9),
            "lag_seconds_median": float(np.nanmedian(lags)),
            "never_settled": int(np.sum(np.isnan(lags))), "accuracy": correct / total}


def main() -> None:
    """Measure and print a JSON table of configurations."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("gtzan", type=Path)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    genres = genres_of(read_manifest(args.data_dir))
    rng = np.random.default_rng(0)
    sequences = []
    for index in range(args.pairs):
        a, b = rng.choice(len(genres), 2, replace=False)
        files = [sorted((args.gtzan / genres[g]).glob("*"))[2 * index % 8:][: args.clips]
                 for g in (a, b)]
        exclude = {str(f.relative_to(args.gtzan)) for f in files[0] + files[1]}
        head, _ = held_out_head(args.data_dir, exclude)
        probabilities, centres, ends, switch = sequence_probabilities(head, *files)
        sequences.append({"a": a, "b": b, "probabilities": probabilities, "centres": centres,
                          "ends": ends, "switch": switch})
        _LOGGER.info("sequence %d: %s -> %s, %d hops", index, genres[a], genres[b], len(ends))
    rows = []
    for method, alpha, window_hops, margin, hops in itertools.product(
            ("ema", "mean"), (0.2, 0.35, 0.5, 1.0), (3, 5), (0.0, 0.05, 0.1), (1, 2, 3)):
        if (method == "ema" and window_hops != 3) or (method == "mean" and alpha != 1.0):
            continue
        config = SmoothingConfig(method=method, alpha=alpha, window_hops=window_hops,
                                hysteresis_margin=margin, hysteresis_hops=hops)
        rows.append({"method": method, "alpha": alpha, "window_hops": window_hops,
                     "margin": margin, "hops": hops, **replay(config, sequences, len(genres))})
    text = json.dumps(rows, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)  # noqa: T201 - the tool's output


if __name__ == "__main__":
    main()
