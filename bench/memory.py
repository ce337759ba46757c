"""Resident memory of the daemon (VGG16, Keras) with one and with eight real-time sources.

Each count is a :func:`bench.streams.sustain` run: the daemon's RSS is sampled every few
seconds after the sources are warm; its ffmpeg children are reported apart.

Run: .venv/bin/python -m bench.memory [--seconds 60] [--runtime keras]
"""

from __future__ import annotations

import argparse
import logging

from bench.common import setup_logging, write_result
from bench.streams import sustain

_LOGGER = logging.getLogger("bench.memory")


def main() -> None:
    """Measure and write bench/results/memory.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runtime", choices=("keras", "tflite"), default="keras")
    parser.add_argument("--counts", default="1,8")
    args = parser.parse_args()
    setup_logging()
    runs = {}
    for count in (int(c) for c in args.counts.split(",")):
        run = sustain(count, args.seconds, args.runtime)
        runs[str(count)] = {key: run[key] for key in (
            "rss_mb_model_loaded", "rss_mb", "rss_mb_growth", "ffmpeg_uss_mb_total", "dropped",
            "sustained", "seconds")}
        _LOGGER.info("%d sources: RSS median %.0f MB", count, run["rss_mb"]["median"])
    write_result("memory" if args.runtime == "keras" else "memory_tflite",
                 {"runtime": args.runtime, "sources": runs})


if __name__ == "__main__":
    main()
