"""The one benchmark command: run every benchmark, then write the table into bench/README.md.

Each benchmark runs as its own process (its own threads and memory), writes
bench/results/<name>.json, and the table between the markers of bench/README.md is rebuilt
from those files. ``--quick`` is a smoke run (minutes, figures not for the record);
``--table-only`` rebuilds the table from the results already there.

Run: .venv/bin/python -m bench.run_all [--quick] [--only NAME ...] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time

from bench.common import PYTHON, REPO_ROOT, setup_logging
from bench.table import write_table

_LOGGER = logging.getLogger("bench.run_all")

# name -> (full arguments, quick arguments); run in this order (the long streams search last).
STEPS: dict[str, tuple[list[str], list[str]]] = {
    "frontend": (["-m", "bench.frontend", "--repeats", "30"],
                 ["-m", "bench.frontend", "--repeats", "5"]),
    "inference": (["-m", "bench.inference", "--repeats", "20"],
                  ["-m", "bench.inference", "--repeats", "4"]),
    "inference_tflite": (
        ["-m", "bench.inference", "--runtime", "tflite", "--quantize", "int8", "--no-peak",
         "--repeats", "20", "--name", "inference_tflite"],
        ["-m", "bench.inference", "--runtime", "tflite", "--quantize", "int8", "--no-peak",
         "--repeats", "4", "--name", "inference_tflite"]),
    "tflite": (["-m", "bench.tflite", "--repeats", "20"], ["-m", "bench.tflite", "--repeats", "4"]),
    "precision": (["-m", "bench.precision"],
                  ["-m", "bench.precision", "--clips-per-genre", "1", "--vgg-clips", "2",
                   "--rounds", "1"]),
    "latency": (["-m", "bench.latency", "--windows", "120"],
                ["-m", "bench.latency", "--windows", "15"]),
    "latency_tflite": (
        ["-m", "bench.latency", "--windows", "120", "--runtime", "tflite", "--quantize", "int8"],
        ["-m", "bench.latency", "--windows", "15", "--runtime", "tflite", "--quantize", "int8"]),
    "latency_default": (
        ["-m", "bench.latency", "--model", "default", "--windows", "60", "--name",
         "latency_default"],
        ["-m", "bench.latency", "--model", "default", "--windows", "10", "--name",
         "latency_default"]),
    "latency_default_tflite": (
        ["-m", "bench.latency", "--model", "default", "--runtime", "tflite", "--windows", "60",
         "--name", "latency_default_tflite"],
        ["-m", "bench.latency", "--model", "default", "--runtime", "tflite", "--windows", "10",
         "--name", "latency_default_tflite"]),
    "tflite_default": (["-m", "bench.tflite_default", "--repeats", "15"],
                       ["-m", "bench.tflite_default", "--repeats", "3"]),
    "fanout": (["-m", "bench.fanout", "--clients", "1000", "--stalled", "100", "--seconds", "40"],
               ["-m", "bench.fanout", "--clients", "300", "--stalled", "30", "--seconds", "10"]),
    "classify": (["-m", "bench.classify", "--repeats", "3"],
                 ["-m", "bench.classify", "--repeats", "1"]),
    "classify_memory": (["-m", "bench.classify_memory", "--minutes", "30,120"],
                        ["-m", "bench.classify_memory", "--minutes", "5"]),
    "cluster": (["-m", "bench.cluster", "--files", "24"], ["-m", "bench.cluster", "--files", "6"]),
    "memory": (["-m", "bench.memory", "--seconds", "60"],
               ["-m", "bench.memory", "--seconds", "15"]),
    "memory_tflite": (["-m", "bench.memory", "--seconds", "60", "--runtime", "tflite"],
                      ["-m", "bench.memory", "--seconds", "15", "--runtime", "tflite"]),
    "streams": (["-m", "bench.streams", "--seconds", "60", "--final-seconds", "300"],
                ["-m", "bench.streams", "--seconds", "15", "--final-seconds", "20"]),
    "streams_default": (
        ["-m", "bench.streams", "--model", "default", "--only", "100", "--seconds", "300",
         "--name", "streams_default_300s_workahead"],
        ["-m", "bench.streams", "--model", "default", "--only", "8", "--seconds", "20",
         "--name", "streams_default"]),
    "streams_default_tflite": (
        ["-m", "bench.streams", "--model", "default", "--runtime", "tflite", "--only", "100",
         "--seconds", "300", "--name", "streams_default_tflite_300s"],
        ["-m", "bench.streams", "--model", "default", "--runtime", "tflite", "--only", "8",
         "--seconds", "20", "--name", "streams_default_tflite"]),
    "streams_tflite": (
        ["-m", "bench.streams", "--runtime", "tflite", "--seconds", "60", "--final-seconds",
         "300"],
        ["-m", "bench.streams", "--runtime", "tflite", "--seconds", "15", "--final-seconds",
         "20"]),
}


def main() -> int:
    """Run the selected steps; rebuild the table; exit 1 if any step failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(STEPS), default=None)
    parser.add_argument("--skip", nargs="+", choices=sorted(STEPS), default=[])
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    setup_logging()
    failed = []
    if not args.table_only:
        for name, (full, quick) in STEPS.items():
            if (args.only and name not in args.only) or name in args.skip:
                continue
            _LOGGER.info("=== %s", name)
            started = time.monotonic()
            code = subprocess.run([PYTHON, *(quick if args.quick else full)],
                                  cwd=REPO_ROOT).returncode
            _LOGGER.info("=== %s: exit %d after %.0f s", name, code, time.monotonic() - started)
            if code:
                failed.append(name)
    path = write_table()
    _LOGGER.info("table written to %s%s", path, f"; failed: {failed}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
