"""Measure an artifact's candidate runtimes on real audio: speed per unit of work, agreement.

The unit is what the daemon's inference thread runs per batch: a patch for patch-serving
kinds (its ``encode`` stage), a whole window otherwise. Each candidate is timed on batches of
:data:`BATCH_ITEMS` units (median of :data:`TIMED_CALLS` calls after one warm-up call) and
its top-1 on every unit is compared with the reference (Keras float32). Run as a process of
its own (``python -m models.runtime_probe``; models/runtime_choice.py does) so the measuring
does not leave TensorFlow in the memory of a daemon that picks LiteRT.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.audio import load_audio
from models.contract import read_contract
from models.features import make_extractor

_LOGGER = logging.getLogger(__name__)

BATCH_ITEMS = 8
"""Units per timed call (the daemon's default max_batch_size)."""
TIMED_CALLS = 5
"""Timed calls per candidate; the median counts."""
MAX_WINDOWS = 12
"""Most 30-s windows measured (of the demo clips: 7; for a patch model every run of 10 of
their patches is a window: 34)."""


@dataclass(frozen=True)
class Candidate:
    """A runtime, the precision it computes in and its threads (tflite; None: every core)."""

    runtime: str
    precision: str
    threads: int | None = None

    @property
    def name(self) -> str:
        """'tflite float32', 'tflite float32 1 thread', 'keras bfloat16'..."""
        threads = "" if self.threads is None else \
            f" {self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{self.runtime} {self.precision}{threads}"

    def to_arg(self) -> str:
        """RUNTIME:PRECISION[:THREADS], as --candidate takes it."""
        return ":".join([self.runtime, self.precision,
                         *([str(self.threads)] if self.threads is not None else [])])

    @classmethod
    def from_arg(cls, text: str) -> Candidate:
        """The inverse of :meth:`to_arg`."""
        runtime, precision, *threads = text.split(":")
        return cls(runtime, precision, int(threads[0]) if threads else None)


@dataclass
class Measurement:
    """One candidate's figures."""

    candidate: Candidate
    ms_per_unit: float
    """Wall time: how long one unit waits (one file's speed in genred classify)."""
    cpu_ms_per_unit: float
    """CPU time of all threads: what a unit costs the machine (sources per machine)."""
    top1_agreement: float
    """Of the windows' labels with the reference's."""
    n_windows: int
    patch_top1_agreement: float | None
    """Of each patch's own top-1 (patch-serving kinds; stricter than the windows')."""
    describe: str

    @property
    def runtime(self) -> str:
        """The candidate's runtime."""
        return self.candidate.runtime

    @property
    def precision(self) -> str:
        """The candidate's precision."""
        return self.candidate.precision

    @property
    def threads(self) -> int | None:
        """The candidate's threads (None: every core)."""
        return self.candidate.threads

    @classmethod
    def from_dict(cls, item: dict) -> Measurement:
        """The inverse of ``dataclasses.asdict`` (KeyError/TypeError when of another form)."""
        return cls(**{**item, "candidate": Candidate(**item["candidate"])})


def probe_windows(folder: Path, clips: Sequence[Path],
                  max_windows: int = MAX_WINDOWS) -> list[np.ndarray]:
    """Per clip, the model inputs of its consecutive 30-s windows (a short clip looped to
    one window); at most ``max_windows`` in all."""
    contract = read_contract(folder)
    extractor = make_extractor(contract.frontend_name, contract.frontend_params)
    window = extractor.window_samples
    per_clip, n_windows = [], 0
    for clip in clips:
        audio = load_audio(clip)
        if audio.shape[0] < window:
            audio = np.resize(audio, window)
        starts = list(range(0, audio.shape[0] - window + 1, window))[:max_windows - n_windows]
        if starts:
            per_clip.append(np.stack([extractor.offline(audio[s:s + window])
                                      for s in starts]).astype(np.float32))
            n_windows += len(starts)
    if not per_clip:
        raise ValueError("no probe audio (the demo clips are missing)")
    return per_clip


def unit_function(loaded: object) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    """(the function the inference thread runs per batch, whether its unit is a patch)."""
    from models.serving import serving_for

    serving = serving_for(loaded)  # type: ignore[arg-type]
    encode = getattr(serving, "encode", None)
    if encode is not None:
        return encode, True
    return loaded.predict_outputs, False  # type: ignore[attr-defined]


def run_in_batches(call: Callable[[np.ndarray], np.ndarray], units: np.ndarray) -> np.ndarray:
    """``call`` over ``units`` in batches of BATCH_ITEMS, float32."""
    return np.concatenate([np.asarray(call(units[i:i + BATCH_ITEMS]), np.float32)
                           for i in range(0, len(units), BATCH_ITEMS)])


def ms_per_unit(call: Callable[[np.ndarray], np.ndarray],
                units: np.ndarray) -> tuple[float, float]:
    """Median (wall, CPU of all threads) milliseconds per unit of TIMED_CALLS calls on one
    batch, after a warm-up call."""
    batch = np.resize(units, (BATCH_ITEMS, *units.shape[1:]))
    call(batch)
    wall, cpu = [], []
    for _ in range(TIMED_CALLS):
        began, began_cpu = time.perf_counter(), time.process_time()
        call(batch)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return (round(float(np.median(wall)) * 1e3 / BATCH_ITEMS, 3),
            round(float(np.median(cpu)) * 1e3 / BATCH_ITEMS, 3))


def window_top1(outputs: np.ndarray, units_per_clip: Sequence[int],
                n_patches: int | None) -> np.ndarray:
    """Window labels: each window's own outputs, or for patch units every run of
    ``n_patches`` consecutive patches of a clip (the daemon's windows at a one-patch hop),
    labelled by its mean logits (the argmax of the pooled softmax(mean / temperature))."""
    labels, at = [], 0
    for count in units_per_clip:
        rows, at = outputs[at:at + count].astype(np.float64), at + count
        if n_patches is None:
            labels.append(rows.argmax(axis=1))
            continue
        sums = np.cumsum(np.vstack([np.zeros((1, rows.shape[1])), rows]), axis=0)
        labels.append((sums[n_patches:] - sums[:-n_patches]).argmax(axis=1))
    return np.concatenate(labels)


def agreement(top1: np.ndarray, reference_top1: np.ndarray) -> float:
    """Share of equal labels, 4 decimals."""
    return round(float(np.mean(top1 == reference_top1)), 4)


def measure(folder: Path, candidates: Sequence[Candidate], clips: Sequence[Path],
            num_threads: int | None, max_windows: int = MAX_WINDOWS) -> list[Measurement]:
    """Every candidate's speed and top-1 agreement with the first (the reference); a
    candidate that differs from an earlier one only in threads shares its agreement."""
    from models.loader import load_model

    per_clip = probe_windows(folder, clips, max_windows)
    found: list[Measurement] = []
    agreements: dict[tuple[str, str], tuple[float, int, float | None]] = {}
    reference: np.ndarray | None = None
    for candidate in candidates:
        threads = candidate.threads if candidate.threads is not None else num_threads
        loaded = load_model(folder, candidate.runtime, threads, candidate.precision)
        call, per_patch = unit_function(loaded)
        clip_units = [w.reshape(-1, *w.shape[2:]) if per_patch else w for w in per_clip]
        units = np.concatenate(clip_units)
        numerics = (candidate.runtime, candidate.precision)
        if numerics not in agreements:
            outputs = run_in_batches(call, units)
            reference = outputs if reference is None else reference
            n_patches = per_clip[0].shape[1] if per_patch else None
            counts = [len(u) for u in clip_units]
            labels, reference_labels = (window_top1(o, counts, n_patches)
                                        for o in (outputs, reference))
            agreements[numerics] = (
                agreement(labels, reference_labels), len(labels),
                agreement(outputs.argmax(1), reference.argmax(1)) if per_patch else None)
        window_agreement, n_windows, patch_agreement = agreements[numerics]
        found.append(Measurement(candidate, *ms_per_unit(call, units), window_agreement,
                                 n_windows, patch_agreement, loaded.predictor.describe()))
        _LOGGER.info("probe %s: %s", candidate.name, found[-1])
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: measure the candidates, print one JSON line (a list of measurements)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--candidate", action="append", required=True,
                        help="RUNTIME:PRECISION[:THREADS], the reference first")
    parser.add_argument("--clip", action="append", required=True, type=Path)
    parser.add_argument("--num-threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    candidates = [Candidate.from_arg(item) for item in args.candidate]
    found = measure(args.folder, candidates, args.clip, args.num_threads)
    sys.stdout.write(json.dumps([asdict(item) for item in found]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
