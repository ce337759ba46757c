"""Files per second of ``genred classify`` with 1 and 2 local workers and on a 2-worker Dask
cluster (scheduler and workers on loopback), genred-default on gtzan-mini clips.

Each run is a ``genred classify --output`` subprocess; the results file is polled, so two
figures come out: end to end (process start, TensorFlow import and model load in every
worker, all files) and steady (files after the first / time from the first to the last).

Run: .venv/bin/python -m bench.cluster [--files 24] [--model DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, REPO_ROOT, SHARED_DATA, machine, setup_logging, write_result
from training.cluster_harness import child_env, dask_cluster

_LOGGER = logging.getLogger("bench.cluster")
DEFAULT_MODEL = REPO_ROOT / "models" / "genred-default"
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.05


def clips(count: int) -> list[str]:
    """The first ``count`` gtzan-mini clips, genres interleaved."""
    genres = sorted(p for p in (SHARED_DATA / "gtzan-mini").iterdir() if p.is_dir())
    per_genre = [sorted(g.glob("*.flac")) for g in genres]
    ordered = [files[i] for i in range(max(map(len, per_genre))) for files in per_genre
               if i < len(files)]
    return [str(p) for p in ordered[:count]]


def timed_run(model: Path, files: list[str], extra: list[str], work: Path) -> dict[str, Any]:
    """Run classify once; end-to-end and steady files per second."""
    output = work / f"results-{time.monotonic_ns()}.jsonl"
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, "-m", "daemon", "classify", str(model), *files,
                                "--output", str(output), *extra], env=child_env(),
                               cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    seen: list[float] = []
    deadline = started + RUN_TIMEOUT_SECONDS
    while process.poll() is None and time.perf_counter() < deadline:
        count = output.read_text().count("\n") if output.is_file() else 0
        seen += [time.perf_counter()] * (count - len(seen))
        time.sleep(POLL_SECONDS)
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    total = time.perf_counter() - started
    count = output.read_text().count("\n")
    seen += [time.perf_counter()] * (count - len(seen))
    steady = (len(seen) - 1) / (seen[-1] - seen[0]) if len(seen) > 1 and seen[-1] > seen[0] \
        else None
    return {"files": count, "exit": process.returncode, "wall_seconds": round(total, 1),
            "files_per_second_end_to_end": round(count / total, 3),
            "files_per_second_steady": round(steady, 3) if steady else None,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    """Measure and write bench/results/cluster.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    args = parser.parse_args()
    setup_logging()
    files, model = clips(args.files), Path(args.model)
    result: dict[str, Any] = {"model": model.name, "clip_seconds": 30,
                              "machine_before": machine()}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for workers in (1, 2):
            result[f"local_{workers}"] = timed_run(model, files, ["--workers", str(workers)],
                                                   work)
            _LOGGER.info("local %d: %s", workers, result[f"local_{workers}"])
        with dask_cluster(work) as cluster:
            result["cluster_2"] = timed_run(model, files, ["--cluster", cluster.address], work)
        _LOGGER.info("cluster 2: %s", result["cluster_2"])
    write_result("cluster", result)


if __name__ == "__main__":
    main()
