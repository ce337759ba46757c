"""Streamed ``genred classify`` on long files: peak RSS and speed (x real time).

The long songs loop the 4-minute song of :mod:`bench.classify` (8 gtzan-mini clips) to
30 and 120 minutes (bench/.cache). Each run is a fresh ``genred classify`` process with one
worker; its peak RSS is its own ``ru_maxrss`` (the ffmpeg decoder, a separate process of
a few MB, is not counted). x real time is end to end: interpreter start, TensorFlow import,
model load, decoding, front-end and inference.

The runtime is ``genred classify``'s default (``auto``: runtime auto's measurement of this
machine by wall time, cached; on Zen 4 the shipped TFLite export on OpenVINO bfloat16,
TensorFlow never imported; the result names it); ``--runtimes auto,keras`` adds the Keras
model for comparison.

Run: .venv/bin/python -m bench.classify_memory [--minutes 30,120] [--runtimes auto,keras]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.classify import make_song
from bench.common import CACHE_DIR, PYTHON, REPO_ROOT, machine, setup_logging, write_result

_LOGGER = logging.getLogger("bench.classify_memory")
DEFAULT_MODEL = REPO_ROOT / "models" / "genred-default"
RUN_TIMEOUT_SECONDS = 1800
CHILD = ("import resource, sys\nfrom daemon.cli import main\nrc = main(sys.argv[1:])\n"
         "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
         "file=sys.stderr)\nsys.exit(rc)\n")


def long_song(minutes: int) -> Path:
    """bench/.cache/song-{minutes}min.flac: the 4-minute song looped (22.05 kHz FLAC)."""
    target = CACHE_DIR / f"song-{minutes}min.flac"
    if not target.is_file():
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop",
                        "-1", "-i", str(make_song()), "-t", str(minutes * 60), "-ac", "1",
                        "-ar", "22050", str(target)], check=True, timeout=600)
    return target


def chosen(model: Path, runtime: str) -> str:
    """What ``--runtime`` meant for classify here, e.g. 'openvino bfloat16' (from the cache
    the run itself filled or read)."""
    from models.runtime_choice import choose_runtime

    choice = choose_runtime(model, runtime, "auto", criterion="wall")
    return f"{choice.runtime} {choice.precision}"


def measure(model: Path, song: Path, minutes: int, runtime: str = "auto") -> dict[str, Any]:
    """Peak RSS and x real time of one ``genred classify --workers 1`` process."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    command = [PYTHON, "-c", CHILD, "classify", str(model), str(song), "--json", "--workers",
               "1", "--runtime", runtime]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=RUN_TIMEOUT_SECONDS, check=True)
    seconds = time.perf_counter() - started
    line = [x for x in done.stderr.splitlines() if x.startswith("MAXRSS_KB")][-1]
    rss_mb = int(line.split()[1]) / 1024
    out = {"minutes": minutes, "runtime": runtime, "chosen": chosen(model, runtime),
           "max_rss_mb": round(rss_mb),
           "wall_seconds": round(seconds, 1), "x_realtime": round(minutes * 60 / seconds, 1),
           "loadavg_after": os.getloadavg()}
    _LOGGER.info("%s, %d min: max RSS %.0f MB, %.1f s, %.1fx real time", runtime, minutes,
                 rss_mb, seconds, out["x_realtime"])
    return out


def main() -> None:
    """Measure and write bench/results/classify_memory.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", default="30,120")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--runtimes", default="auto,keras")
    args = parser.parse_args()
    setup_logging()
    result: dict[str, Any] = {"model": Path(args.model).name, "machine_before": machine()}
    result["runs"] = [measure(Path(args.model), long_song(int(m)), int(m), runtime)
                      for runtime in args.runtimes.split(",") for m in args.minutes.split(",")]
    write_result("classify_memory", result)


if __name__ == "__main__":
    main()
