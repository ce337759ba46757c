"""``genred history``'s readable table: one line per run of a genre on a source."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

GAP_SECONDS = 60.0
"""Rows further apart than this start a new run (the source stopped in between)."""


@dataclass
class GenreRun:
    """Consecutive predictions of one genre on one source."""

    source: str
    genre: str
    start_time: float
    """Unix seconds of the first prediction."""
    end_time: float
    """Unix seconds of the last prediction (or the next run's start on this source)."""
    confidences: list[float]

    @property
    def duration_seconds(self) -> float:
        """How long the genre held."""
        return self.end_time - self.start_time


def genre_runs(rows: list[dict[str, Any]]) -> list[GenreRun]:
    """Group rows (oldest first) into runs of a genre per source, in start order."""
    runs: list[GenreRun] = []
    current: dict[str, GenreRun] = {}
    for row in rows:
        source, at = row["source"], row["wall_time"]
        run = current.get(source)
        if run is not None and at - run.end_time <= GAP_SECONDS:
            if run.genre == row["genre"]:
                run.end_time = at
                run.confidences.append(row["confidence"])
                continue
            run.end_time = at  # held until this change
        run = GenreRun(source, row["genre"], at, at, [row["confidence"]])
        current[source] = run
        runs.append(run)
    return runs


def format_duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 07 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def runs_table(rows: list[dict[str, Any]]) -> str:
    """The table text: time, source, genre, mean confidence, duration, predictions."""
    runs = genre_runs(rows)
    if not runs:
        return "no predictions stored for this selection\n"
    width = max(6, *(len(run.source) for run in runs))
    lines = [f"{'time':<19}  {'source':<{width}}  {'genre':<10}  confidence  "
             f"{'duration':>13}  predictions"]
    for run in runs:
        start = datetime.fromtimestamp(run.start_time).strftime("%Y-%m-%d %H:%M:%S")
        mean = sum(run.confidences) / len(run.confidences)
        lines.append(f"{start:<19}  {run.source:<{width}}  {run.genre:<10}  {mean:10.2f}  "
                     f"{format_duration(run.duration_seconds):>13}  {len(run.confidences):>11}")
    return "\n".join(lines) + "\n"


def stored_sources(path: str | Path) -> list[str]:
    """The source names the history database holds, sorted."""
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=5.0)
    try:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'predictions'"
                                  ).fetchone():
            return []
        return [name for (name,) in connection.execute(
            "SELECT DISTINCT source FROM predictions ORDER BY source")]
    finally:
        connection.close()
