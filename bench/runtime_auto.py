"""runtime auto on this machine: the first start's measuring (what it chose, how long it took)
and each candidate's agreement with Keras float32 on a larger real sample.

1. ``choose_runtime`` for genred-default with an empty state dir: the daemon's own first
   start (a child process times LiteRT, Keras float32 and, on a bf16 CPU, Keras bfloat16 on
   the demo clips); the wall time of that choice, and of the cached second one.
2. The same candidates on gtzan-mini (the first ``--clips-per-genre`` clips of each genre, one
   30-s window each): speed per unit and top-1 agreement per window and per patch.

Run on an idle machine: flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python -m
bench.runtime_auto (writes bench/results/runtime_auto.json; ``taskset -c 0`` for one core,
with ``--name runtime_auto_1core``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from typing import Any

from bench.common import REPO_ROOT, SHARED_DATA, setup_logging, write_result

_LOGGER = logging.getLogger("bench.runtime_auto")
MODEL = REPO_ROOT / "models" / "genred-default"


def first_start() -> dict[str, Any]:
    """The daemon's choice with an empty cache, then with the cache: wall seconds and result."""
    from models import runtime_choice

    os.environ.pop(runtime_choice.PROBE_SWITCH, None)
    with tempfile.TemporaryDirectory() as state:
        os.environ["XDG_STATE_HOME"] = state
        began = time.perf_counter()
        choice = runtime_choice.choose_runtime(MODEL, "auto", "auto")
        first_seconds = time.perf_counter() - began
        began = time.perf_counter()
        cached = runtime_choice.choose_runtime(MODEL, "auto", "auto")
        cached_seconds = time.perf_counter() - began
    assert (cached.runtime, cached.precision) == (choice.runtime, choice.precision)
    return {"chosen": f"{choice.runtime} {choice.precision}", "reason": choice.reason,
            "first_start_seconds": round(first_seconds, 2),
            "cached_seconds": round(cached_seconds, 3),
            "measured": [dataclasses.asdict(m) for m in choice.measured]}


def larger_sample(per_genre: int) -> dict[str, Any]:
    """Every candidate on gtzan-mini windows: ms per unit, agreement per window and patch."""
    from models.runtime_choice import candidates
    from models.runtime_probe import measure

    clips = []
    for genre in sorted(p for p in (SHARED_DATA / "gtzan-mini").iterdir() if p.is_dir()):
        clips += sorted(genre.glob("*.flac"))[:per_genre]
    found = measure(MODEL, candidates(MODEL), clips, None, max_windows=10_000)
    return {"n_clips": len(clips), "measured": [dataclasses.asdict(m) for m in found]}


def main() -> None:
    """Measure and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-genre", type=int, default=10)
    parser.add_argument("--name", default="runtime_auto")
    args = parser.parse_args()
    setup_logging()
    result: dict[str, Any] = {"first_start": first_start()}
    _LOGGER.info("first start: %s", result["first_start"])
    if (SHARED_DATA / "gtzan-mini").is_dir():
        result["gtzan_mini"] = larger_sample(args.clips_per_genre)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result(args.name, result)


if __name__ == "__main__":
    main()
