"""Choose smoother and change-detector defaults by measurement: flicker vs. lag on real music.

Builds sequences "genre A for N clips, then genre B for N clips" from gtzan-mini and runs
them as the daemon serves the default model (kind ``musicnn-patch-head``): the sequence's
2.992-s patches on the grid from its start (``stream_patches``), each patch encoded once by
the artifact's patch encoder, a window every patch (the 2-s hop rounded to one patch) =
softmax(mean of its 10 patch scores). Patch scores come from a head that never saw the
sequence's clips (``--head held-out``, default: a softmax layer on the encoder features of
every other gtzan-mini clip's patches, temperature 1) or from the shipped head
(``--head shipped``: trained on all of gtzan-mini, so optimistic). The windows are replayed
through ChangeDetector + Smoother configurations (as daemon/service.py chains them), and per
configuration it reports: label changes per minute while the true genre is steady
(flicker), seconds from the true switch until the label stays B (lag), and the share of
windows whose label is the genre of the window's centre.

Several folders (e.g. the collections the shipped head never heard: ``emotify-share
taffc-share --head shipped``) pool their genre folders; a sequence's two genres may come
from different collections, as on a radio.

Usage: python -m tools.tune_smoother MUSIC_DIR [MUSIC_DIR ...] [--model models/genred-default]
       [--pairs 12] [--clips 2] [--head held-out|shipped] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from daemon.change import ChangeDetector, pooled_probabilities
from daemon.smoother import Smoother, SmoothingConfig
from models.audio import load_audio
from models.musicnn.streaming import patch_start_sample, stream_patches
from models.outcome import split_outputs
from training.linear import fit_softmax

_LOGGER = logging.getLogger("tune_smoother")
N_PATCHES = 10
AUDIO_SUFFIXES = {".flac", ".mp3", ".wav", ".ogg"}
RATE_HZ = 44100
STEP_SAMPLES = patch_start_sample(1000) / 1000
HOP_SECONDS = STEP_SAMPLES / RATE_HZ
"""A window per 2.992-s patch (the daemon's 2-s hop rounded to whole patches)."""
SMOOTHERS = [("none", SmoothingConfig(alpha=1.0, hysteresis_margin=0.0, hysteresis_hops=1)),
             ("EMA 0.5, margin 0.1, 2 hops", SmoothingConfig()),
             ("EMA 0.35, margin 0.05, 2 hops", SmoothingConfig(alpha=0.35,
                                                               hysteresis_margin=0.05)),
             ("EMA 0.2, no hysteresis", SmoothingConfig(alpha=0.2, hysteresis_margin=0.0,
                                                        hysteresis_hops=1)),
             ("EMA 0.5, margin 0.2, 3 hops", SmoothingConfig(hysteresis_margin=0.2,
                                                             hysteresis_hops=3)),
             ("EMA 0.35, margin 0.1, 4 hops", SmoothingConfig(alpha=0.35, hysteresis_hops=4)),
             ("mean of 5, margin 0.1, 3 hops", SmoothingConfig(method="mean",
                                                               hysteresis_hops=3))]
CHANGES = [(0, 0.0), (2, 0.7), (2, 0.8), (2, 0.9), (3, 0.7), (3, 0.8), (3, 0.9), (4, 0.7),
           (4, 0.9)]
"""(change_patches, change_probability); 0 patches: no change detector."""


class Scorer:
    """Patch encoder features and patch scores (logits / temperature) of the artifact."""

    def __init__(self, model_dir: Path) -> None:
        from models.loader import load_model
        from models.patch_head import stage_models

        loaded = load_model(model_dir)
        self.labels = list(loaded.labels)
        """The model's genres (its outputs without no music)."""
        self.encoder, self.head, self.temperature = stage_models(loaded.predictor.model)

    def features(self, patches: np.ndarray) -> np.ndarray:
        """(n, 187, 96) patches -> (n, features) encoder outputs."""
        return np.concatenate([np.asarray(self.encoder.predict_on_batch(patches[i:i + 16]))
                               for i in range(0, patches.shape[0], 16)])

    def shipped_scores(self, features: np.ndarray) -> np.ndarray:
        """The shipped head's patch logits / temperature (genres + no music)."""
        return np.asarray(self.head.predict_on_batch(features), np.float64) / self.temperature


def clip_features(scorer: Scorer, files: list[Path], cache: Path | None) -> dict[str, np.ndarray]:
    """Encoder features of each clip's own patches, by path (cached in ``cache`` if given)."""
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        if all(str(f) in stored for f in files):
            return {str(f): stored[str(f)] for f in files}
    table = {str(f): scorer.features(stream_patches(load_audio(f))) for f in files}
    if cache is not None:
        np.savez(cache, **table)
    return table


def held_out_scores(table: dict[str, np.ndarray], genre_of: dict[str, int], exclude: set[str],
                    features: np.ndarray, n_labels: int) -> np.ndarray:
    """Patch logits of a softmax layer fitted on the patches of every clip not in ``exclude``."""
    kept = [path for path in table if path not in exclude]
    train = np.concatenate([table[path] for path in kept])
    labels = np.concatenate([np.full(table[path].shape[0], genre_of[path]) for path in kept])
    head = fit_softmax(train, labels, n_labels, l2=0.1)
    return ((features - head.mean) / head.scale) @ head.weights + head.bias


def replay(smoothing: SmoothingConfig, change: tuple[int, float], sequences: list[dict],
           n_labels: int) -> dict:
    """Flicker, lag and accuracy of one configuration over all sequences."""
    flicker_changes, steady_minutes, lags, correct, total = 0, 0.0, [], 0, 0
    for seq in sequences:
        smoother = Smoother(n_labels, smoothing)
        detector = (ChangeDetector(n_labels, N_PATCHES, STEP_SAMPLES, *change)
                    if change[0] else None)
        labels = []
        for row, end in zip(seq["rows"], seq["end_samples"], strict=True):
            n_outputs = row.shape[0] // (N_PATCHES + 1)
            to_smooth = row[:n_outputs]
            if detector is not None:
                scores = row[n_outputs:].reshape(N_PATCHES, n_outputs)
                to_smooth, moved = detector.update(to_smooth, scores, end, smoother.label_index)
                if moved:
                    smoother.reset()
            genres, _ = split_outputs(to_smooth[np.newaxis], n_labels)
            labels.append(smoother.update(genres[0]).label_index)
        ends = seq["end_samples"] / RATE_HZ
        centres = ends - N_PATCHES * HOP_SECONDS / 2
        truth = np.where(centres < seq["switch"], seq["a"], seq["b"])
        correct += int(np.sum(np.array(labels) == truth))
        total += len(labels)
        steady = (ends < seq["switch"]) | (ends - 30 > seq["switch"])
        changes = np.flatnonzero(np.diff(labels)) + 1
        flicker_changes += int(np.sum(steady[changes]))
        steady_minutes += steady.sum() * HOP_SECONDS / 60
        after = [i for i in range(len(labels)) if ends[i] > seq["switch"]
                 and all(x == seq["b"] for x in labels[i:])]
        lags.append(ends[after[0]] - seq["switch"] if after else np.nan)
    return {"flicker_per_minute": round(flicker_changes / max(steady_minutes, 1e-9), 3),
            "flicker_changes": flicker_changes, "steady_minutes": round(steady_minutes, 1),
            "lag_seconds_median": round(float(np.nanmedian(lags)), 1),
            "never_settled": int(np.sum(np.isnan(lags))), "accuracy": round(correct / total, 3)}


def genre_files(music_dirs: list[Path], labels: list[str] | None
                ) -> tuple[list[str], dict[str, list[Path]]]:
    """(genres: ``labels`` or the folders' genres sorted, {genre: its clips over every folder
    with at least 2 clips}); a genre the labels lack is an error."""
    files: dict[str, list[Path]] = {}
    for folder in music_dirs:
        for genre_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            clips = sorted(p for p in genre_dir.iterdir() if p.suffix in AUDIO_SUFFIXES)
            files.setdefault(genre_dir.name, []).extend(clips)
    genres = sorted(files) if labels is None else list(labels)
    unknown = sorted(set(files) - set(genres))
    if unknown:
        raise SystemExit(f"genres {unknown} are not among the model's labels {genres}")
    return genres, {g: f for g, f in files.items() if len(f) >= 2}


def window_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows [window outputs, patch scores] of every full window and their end samples."""
    rows = [np.concatenate([pooled_probabilities(scores[k - N_PATCHES + 1:k + 1]),
                            scores[k - N_PATCHES + 1:k + 1].ravel()])
            for k in range(N_PATCHES - 1, scores.shape[0])]
    ends = np.array([patch_start_sample(k + 1) for k in range(N_PATCHES - 1, scores.shape[0])])
    return np.stack(rows).astype(np.float32), ends


def main() -> None:
    """Measure and print a JSON table of configurations."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("music_dirs", type=Path, nargs="+",
                        help="folders of <genre>/<clip> (GTZAN layout)")
    parser.add_argument("--model", type=Path, default=Path("models/genred-default"))
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--head", choices=("held-out", "shipped"), default="held-out")
    parser.add_argument("--cache", type=Path, help="npz of the clips' encoder features")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    scorer = Scorer(args.model)
    genres, files = genre_files(args.music_dirs, scorer.labels if args.head == "shipped"
                                else None)
    genre_of = {str(f): genres.index(g) for g in genres for f in files.get(g, [])}
    table = (clip_features(scorer, [Path(p) for p in genre_of], args.cache)
             if args.head == "held-out" else {})
    rng = np.random.default_rng(0)
    sequences = []
    for index in range(args.pairs):
        a, b = (genres.index(g) for g in rng.choice(sorted(files), 2, replace=False))
        chosen = [files[genres[g]][2 * index % 8:][: args.clips] for g in (a, b)]
        audio_a = np.concatenate([load_audio(p) for p in chosen[0]])
        audio = np.concatenate([audio_a, *[load_audio(p) for p in chosen[1]]])
        features = scorer.features(stream_patches(audio))
        scores = (scorer.shipped_scores(features) if args.head == "shipped" else held_out_scores(
            table, genre_of, {str(f) for f in chosen[0] + chosen[1]}, features, len(genres)))
        rows, ends = window_rows(scores)
        sequences.append({"a": a, "b": b, "rows": rows, "end_samples": ends,
                          "switch": audio_a.shape[0] / RATE_HZ})
        _LOGGER.info("sequence %d: %s -> %s, %d windows", index, genres[a], genres[b], len(ends))
    rows = [{"smoothing": name, "change_patches": patches, "change_probability": probability,
             **replay(config, (patches, probability), sequences, len(genres))}
            for (name, config), (patches, probability) in itertools.product(SMOOTHERS, CHANGES)]
    text = json.dumps({"music_dirs": [str(d) for d in args.music_dirs], "head": args.head,
                       "pairs": args.pairs, "clips": args.clips,
                       "hop_seconds": round(HOP_SECONDS, 3), "rows": rows}, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)  # noqa: T201 - the tool's output


if __name__ == "__main__":
    main()
