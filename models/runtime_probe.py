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
from models.resample import SAMPLE_RATE_HZ

_LOGGER = logging.getLogger(__name__)

BATCH_ITEMS = 8
"""Units per timed call (the daemon's default max_batch_size)."""
TIMED_CALLS = 5
"""Timed calls per candidate; the median counts."""
WINDOW_STEP_SECONDS = 3.75
"""Windows of each clip start this far apart (a patch grid that shifts between windows)."""
MAX_WINDOWS = 48
"""Most windows measured (a whole-window model is slow per window)."""


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

    runtime: str
    precision: str
    threads: int | None
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


def probe_windows(folder: Path, clips: Sequence[Path], max_windows: int = MAX_WINDOWS,
                  step_seconds: float = WINDOW_STEP_SECONDS) -> np.ndarray:
    """Model inputs of windows every ``step_seconds`` through each clip (a short clip looped
    to one window), at most ``max_windows``."""
    contract = read_contract(folder)
    extractor = make_extractor(contract.frontend_name, contract.frontend_params)
    window = extractor.window_samples
    step = int(step_seconds * SAMPLE_RATE_HZ)
    inputs = []
    for clip in clips:
        audio = load_audio(clip)
        if audio.shape[0] < window:
            audio = np.resize(audio, window)
        inputs += [extractor.offline(audio[start:start + window])
                   for start in range(0, audio.shape[0] - window + 1, step)]
    if not inputs:
        raise ValueError("no probe audio (the demo clips are missing)")
    return np.stack(inputs[:max_windows]).astype(np.float32)


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


def window_top1(outputs: np.ndarray, n_windows: int) -> np.ndarray:
    """Each window's label: of its outputs, or of its patches' mean logits (the argmax of the
    pooled softmax(mean / temperature))."""
    return outputs.reshape(n_windows, -1, outputs.shape[-1]).mean(axis=1).argmax(axis=1)


def agreement(top1: np.ndarray, reference_top1: np.ndarray) -> float:
    """Share of equal labels, 4 decimals."""
    return round(float(np.mean(top1 == reference_top1)), 4)


def measure(folder: Path, candidates: Sequence[Candidate], clips: Sequence[Path],
            num_threads: int | None, windows: np.ndarray | None = None) -> list[Measurement]:
    """Every candidate's speed and top-1 agreement with the first (the reference), on
    ``windows`` (default: :func:`probe_windows` of ``clips``)."""
    from models.loader import load_model

    windows = probe_windows(folder, clips) if windows is None else windows
    reference: np.ndarray | None = None
    found = []
    for candidate in candidates:
        threads = candidate.threads if candidate.threads is not None else num_threads
        loaded = load_model(folder, candidate.runtime, threads, candidate.precision)
        call, per_patch = unit_function(loaded)
        units = windows.reshape(-1, *windows.shape[2:]) if per_patch else windows
        outputs = run_in_batches(call, units)
        reference = outputs if reference is None else reference
        found.append(Measurement(
            candidate.runtime, candidate.precision, candidate.threads, *ms_per_unit(call, units),
            agreement(window_top1(outputs, len(windows)), window_top1(reference, len(windows))),
            len(windows), agreement(outputs.argmax(1), reference.argmax(1)) if per_patch else None,
            loaded.predictor.describe()))
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
