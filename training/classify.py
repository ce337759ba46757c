"""``genred classify``: whole-song genre by majority vote over 30-s slices (as the report)."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.audio import AudioDecodeError
from models.audio_stream import decode_chunks, probe_stream
from models.bfft import DEFAULT_PARAMS
from models.features import BfftExtractor, FeatureExtractor, make_extractor
from models.outcome import NO_MUSIC_THRESHOLD, SILENCE_RMS_DBFS, rms_dbfs, split_outputs
from training.metrics import vote
from training.slicing import MIN_PAD_SECONDS, loop_to_window, plan_slices
from training.stream_slicer import StreamSlicer, Window

_LOGGER = logging.getLogger(__name__)

PREDICT_BATCH = 8
"""Windows per predict call for single-image inputs (BFFT: VGG16, tiny-cnn)."""
PATCHES_PER_PREDICT = 10
"""Patches per predict call for patch-stack inputs (musicnn-mel: 10 patches = 1 window).
Measured with genred-default: 1 window per call adds ~90 MB RSS to the loaded model and
8 windows ~950 MB, for 12 % less time per window; streaming keeps the smaller one."""
IN_PROCESS_PARALLEL_CALLS = 2
"""Batches in flight at once when one process classifies (a runtime with side-by-side calls,
OpenVINO: a stream each; with one in flight the front end and inference took turns). A 30-min
file, 2 cores: 10.9 -> 9.0 s; more streams would cost ~150 MB each for little."""
NO_MUSIC = "no music"
HOP_SNAP_SECONDS = 0.01
_BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
               "[{elapsed}<{remaining}, {rate_fmt}]")
"""Per-file bar: seconds of audio done; its rate (s/s) is the speed in x real time."""


def slice_images(samples: np.ndarray, hop_seconds: float, source: str,
                 extractor: FeatureExtractor | None = None) -> tuple[list, np.ndarray]:
    """(slice starts in samples, model inputs) of a song decoded whole, by the dataset slicing
    rules (the in-memory reference that the streamed :func:`classify_song` equals)."""
    rate_hz, window = DEFAULT_PARAMS.sample_rate_hz, DEFAULT_PARAMS.window_samples
    plan = plan_slices(samples.shape[0], hop_samples=hop_samples_for(hop_seconds),
                       allow_short=True)
    if not plan.starts:
        raise AudioDecodeError(source, "no audio samples")
    if plan.padded and samples.shape[0] < MIN_PAD_SECONDS * rate_hz:
        _LOGGER.warning("%s is %.1f s, shorter than one window: classified on the file "
                        "looped to one window", source, samples.shape[0] / rate_hz)
    if plan.padded:
        samples = loop_to_window(samples, window)
    extractor = extractor or BfftExtractor(DEFAULT_PARAMS)
    images = np.stack([extractor.offline(samples[s:s + window]) for s in plan.starts])
    return list(plan.starts), images


def slice_outcomes(genre_probabilities: np.ndarray, no_music: np.ndarray,
                   levels_dbfs: np.ndarray, labels: list[str], silence_dbfs: float) -> list[str]:
    """Per slice: 'silent', 'no music' or its most probable genre."""
    return ["silent" if level < silence_dbfs else
            NO_MUSIC if p_none >= NO_MUSIC_THRESHOLD else labels[int(row.argmax())]
            for row, p_none, level in zip(genre_probabilities, no_music, levels_dbfs,
                                          strict=True)]


def song_verdict(outcomes: list[str], genre_probabilities: np.ndarray,
                 labels: list[str]) -> tuple[str, int]:
    """(verdict, votes): music, no music or silent, whichever most slices are (ties go to
    music); for music, the majority genre of the music slices."""
    music = np.array([o in labels for o in outcomes])
    counts = {kind: outcomes.count(kind) for kind in (NO_MUSIC, "silent")}
    other = max(counts, key=lambda kind: counts[kind])
    if counts[other] > music.sum():
        return other, counts[other]
    winner = vote(genre_probabilities[music])
    return labels[winner], int(sum(o == labels[winner] for o in outcomes))


def hop_samples_for(hop_seconds: float) -> int:
    """Hop in samples; within 10 ms of a window it is exactly one window (consecutive)."""
    rate_hz, window = DEFAULT_PARAMS.sample_rate_hz, DEFAULT_PARAMS.window_samples
    hop_samples = round(hop_seconds * rate_hz)
    return window if abs(hop_samples - window) <= HOP_SNAP_SECONDS * rate_hz else hop_samples


def predict_batch_windows(frontend_params: dict) -> int:
    """Windows per predict call: PREDICT_BATCH images, or PATCHES_PER_PREDICT patches' worth
    of windows for a front-end that makes a stack of ``n_patches`` patches per window."""
    n_patches = frontend_params.get("n_patches")
    return max(1, PATCHES_PER_PREDICT // int(n_patches)) if n_patches else PREDICT_BATCH


class _SliceBatcher:
    """Model inputs of ready windows, predicted PREDICT_BATCH at a time across the file.

    One batch is predicted on a worker thread while the caller decodes and computes the next
    one's features (the runtimes and numpy release the GIL); at most the model's
    ``parallel_calls`` batches are in flight (OpenVINO streams side by side; one elsewhere),
    so memory stays bounded, and outputs are collected oldest first, keeping their order.
    """

    def __init__(self, loaded, extractor: FeatureExtractor) -> None:
        self.loaded, self.extractor = loaded, extractor
        self.batch_windows = predict_batch_windows(loaded.contract.frontend_params)
        self.starts: list[int] = []
        self.levels_dbfs: list[float] = []
        self.outputs: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []
        self._max_in_flight = int(getattr(loaded, "parallel_calls", 1))
        self._executor = ThreadPoolExecutor(self._max_in_flight,
                                            thread_name_prefix="classify-predict")
        self._in_flight: deque[Future] = deque()

    def add(self, windows: list[Window]) -> None:
        """Features and level of each window; predict whenever a batch is full."""
        for start, window in windows:
            self.starts.append(start)
            self.levels_dbfs.append(rms_dbfs(window))
            self._pending.append(self.extractor.offline(window))
            if len(self._pending) == self.batch_windows:
                self.flush()

    def flush(self) -> None:
        """Start predicting the pending inputs (once fewer than the runtime's parallel calls
        are in flight: the oldest is collected first, so outputs keep their order)."""
        if self._pending:
            batch, self._pending = np.stack(self._pending), []
            if len(self._in_flight) >= self._max_in_flight:
                self._collect_oldest()
            self._in_flight.append(self._executor.submit(self.loaded.predict_outputs, batch))

    def finish(self) -> None:
        """Predict what is pending and wait for every output."""
        self.flush()
        while self._in_flight:
            self._collect_oldest()

    def close(self) -> None:
        """End the worker thread (after the batch in flight, if any)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _collect_oldest(self) -> None:
        """Wait for the oldest batch in flight and keep its outputs (its error is raised
        here)."""
        self.outputs.append(self._in_flight.popleft().result())


def classify_song(loaded, path: str, hop_seconds: float = 30.0,
                  silence_dbfs: float = SILENCE_RMS_DBFS, progress: bool = True) -> dict:
    """Genre of one file, streamed: per-slice outcomes, then the majority (silence and
    non-music slices are never a genre). Memory does not grow with the file's length."""
    rate_hz = DEFAULT_PARAMS.sample_rate_hz
    if "://" not in path and not Path(path).is_file():
        raise AudioDecodeError(path, "no such file")
    info = probe_stream(path)
    slicer = StreamSlicer(hop_samples_for(hop_seconds), loop_short=True)
    batcher = _SliceBatcher(loaded, make_extractor(loaded.contract.frontend_name,
                                                   loaded.contract.frontend_params))
    with tqdm(total=info.duration_seconds, desc=Path(path).name[-30:], unit="s", leave=False,
              disable=not progress,
              bar_format=_BAR_FORMAT if info.duration_seconds else None) as bar:
        try:
            for chunk in decode_chunks(path, info):
                batcher.add(slicer.push(chunk))
                _advance(bar, chunk.size / rate_hz)
            batcher.add(slicer.finish())
            batcher.finish()
        finally:
            batcher.close()
    if not batcher.starts:
        raise AudioDecodeError(path, "no audio samples")
    if slicer.plan is not None and slicer.plan.padded and \
            slicer.n_samples < MIN_PAD_SECONDS * rate_hz:
        _LOGGER.warning("%s is %.1f s, shorter than one window: classified on the file "
                        "looped to one window", path, slicer.n_samples / rate_hz)
    return song_result(path, batcher.starts, np.concatenate(batcher.outputs),
                       np.array(batcher.levels_dbfs), slicer.n_samples, list(loaded.labels),
                       silence_dbfs)


def _advance(bar: tqdm, seconds: float) -> None:
    """Move the bar by ``seconds``, never past its total: the probed duration can be shorter
    than what ffmpeg decodes (tqdm would warn 'clamping frac' and show a negative ETA)."""
    if bar.total:
        seconds = max(0.0, min(seconds, bar.total - bar.n))
    bar.update(seconds)


def song_result(path: str, starts: list[int], outputs: np.ndarray, levels_dbfs: np.ndarray,
                n_samples: int, labels: list[str], silence_dbfs: float) -> dict:
    """The JSON-ready result of one song from its slices' raw outputs and levels."""
    rate_hz = DEFAULT_PARAMS.sample_rate_hz
    probabilities, no_music = split_outputs(outputs, len(labels))
    outcomes = slice_outcomes(probabilities, no_music, levels_dbfs, labels, silence_dbfs)
    verdict, votes = song_verdict(outcomes, probabilities, labels)
    return {
        "file": path,
        "genre": verdict if verdict in labels else None,
        "tied_with": tied_genres(outcomes, verdict, labels),
        "outcome": verdict if verdict in (NO_MUSIC, "silent") else "music",
        "votes": votes,
        "n_slices": len(starts),
        "seconds": round(n_samples / rate_hz, 3),
        "mean_probabilities": _named(probabilities.mean(axis=0), labels),
        "slices": [{"index": i, "start_seconds": round(s / rate_hz, 3),
                    "outcome": outcomes[i], "level_dbfs": round(float(levels_dbfs[i]), 1),
                    "no_music_probability": round(float(no_music[i]), 4),
                    "probabilities": _named(probabilities[i], labels)}
                   for i, s in enumerate(starts)],
    }


def tied_genres(outcomes: list[str], verdict: str, labels: list[str]) -> list[str]:
    """The genres that had as many slice votes as the verdict (a tie the mean broke)."""
    if verdict not in labels:
        return []
    votes = outcomes.count(verdict)
    return [label for label in labels if label != verdict and outcomes.count(label) == votes]


def _named(values: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Probabilities keyed by label, rounded for output."""
    return {label: round(float(value), 4) for label, value in zip(labels, values, strict=True)}


def format_song(result: dict) -> str:
    """Readable lines of one song: the verdict, then each slice with its top-3 genres."""
    verdict = result["genre"] or result["outcome"]
    mean = (f", mean p {result['mean_probabilities'][verdict]:.2f}" if result["genre"] else "")
    tied = result.get("tied_with") or []
    if tied:
        others = ", ".join(f"{g} {result['mean_probabilities'][g]:.2f}" for g in tied)
        mean += f"; tie with {others} broken by the higher mean p"
    lines = [f"{result['file']}: {verdict} ({result['votes']}/{result['n_slices']} "
             f"slices{mean})"]
    for item in result["slices"]:
        top = sorted(item["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        ranked = "  ".join(f"{label} {p:.2f}" for label, p in top)
        if item["outcome"] not in item["probabilities"]:
            ranked = f"{item['outcome']} ({item['level_dbfs']:.0f} dBFS, p(no music) " \
                     f"{item['no_music_probability']:.2f})"
        lines.append(f"  s{item['index']:02d} @ {item['start_seconds']:7.1f} s  {ranked}")
    return "\n".join(lines)


def classify_task(path: str, model_dir: str, hop_seconds: float, silence_dbfs: float,
                  progress: bool, runtime: str = "auto", precision: str = "float32",
                  parallel_calls: int = 1) -> dict:
    """One file's result on a worker (its model loaded once per process); a decode error is
    the file's result (``{"file", "error"}``), not an exception."""
    from training.cluster import worker_model

    try:
        return classify_song(worker_model(model_dir, runtime, precision, parallel_calls), path,
                             hop_seconds, silence_dbfs, progress=progress)
    except AudioDecodeError as error:
        return {"file": path, "error": str(error)}
