"""Capacity per machine: every genred-default streams run, side by side by CPU and cores used."""

from __future__ import annotations

import json
from typing import Any

from bench.common import RESULTS_DIR, cpu_label

HEADER = ["CPU (flags of note), cores used", "runtime", "sources", "run", "dropped",
          "fewest windows of a source / expected", "inference per batch (windows)",
          "per window", "longest wait for a batch",
          "overload ratio, effective hop (max, in hops)", "1-min load", "sustained", "results file"]


def runtime_cell(run: dict[str, Any]) -> str:
    """'tflite', or 'auto: keras bfloat16' (what runtime auto chose for the run)."""
    chosen = run.get("runtime_chosen")
    if not chosen:
        return run.get("runtime", "keras")
    return f"auto: {chosen['runtime']} {chosen['precision']}" + (
        f", {chosen['threads']} thread" if chosen.get("threads") else "")


def _runs() -> list[dict[str, Any]]:
    """Single genred-default runs of bench.streams (``--only``), any machine, by name."""
    runs = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        result = json.loads(path.read_text())
        if result.get("model") == "default" and "n_sources" in result and "machine" in result:
            runs.append({"name": path.stem, **result})
    return runs


def _row(run: dict[str, Any]) -> list[str]:
    """One run as table cells."""
    hop = run.get("effective_hop_seconds")
    overload = (f"{run['overload_ratio']:.2f}, {hop['median']:.2f} s "
                f"({run['effective_hop_max_in_hops']:.2f})" if hop else "—")
    return [cpu_label(run["machine"]), runtime_cell(run), str(run["n_sources"]),
            f"{run['seconds']:.0f} s", str(run["dropped"]),
            f"{run['windows_min']} / {run['windows_expected']}",
            f"{run['inference_seconds_per_batch']:.3f} s ({run['mean_batch_size']})",
            f"{1000 * run['inference_seconds_per_batch'] / run['mean_batch_size']:.1f} ms",
            _wait_cell(run), overload,
            f"{run.get('load_average_1min_start')}–{run.get('load_average_1min_end')}",
            "yes" if run["sustained"] else "**no**", f"`{run['name']}`"]


def _wait_cell(run: dict[str, Any]) -> str:
    """The longest a source's window waited for its batch (runs since it was recorded)."""
    waits = run.get("window_wait_max_seconds")
    return f"{waits['max']:.2f} s" if waits else "—"


def capacity_table() -> str:
    """Markdown: one row per genred-default run, grouped by CPU, then cores used, then N."""
    runs = sorted(_runs(), key=lambda r: (cpu_label(r["machine"]), r["n_sources"]))
    if not runs:
        return ""
    lines = ["Capacity per machine (genred-default, looped real-time file sources, "
             "`bench.streams --model default --only N`; `bench/results/<name>.json`):", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row(run)) + " |" for run in runs]
    return "\n".join(lines)
