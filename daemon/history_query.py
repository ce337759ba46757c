"""The history table, and reading it: queries, time arguments, CSV, /history parameters."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_QUERY_ROWS = 100_000
DEFAULT_QUERY_ROWS = 1000
SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    wall_time REAL NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms INTEGER NOT NULL,
    genre TEXT NOT NULL,
    confidence REAL NOT NULL,
    changed INTEGER NOT NULL,
    probabilities TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (wall_time);
CREATE INDEX IF NOT EXISTS predictions_source_time ON predictions (source, wall_time);
"""
"""The history database: one row per prediction (the one definition of the table)."""
COLUMNS = ("id", "source", "wall_time", "window_start_ms", "window_end_ms", "genre",
           "confidence", "changed", "probabilities", "model")
"""The predictions table's columns, in order."""
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PARAMS = ("source", "since", "until", "limit", "changes")


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds from '1700000000', ISO 8601 (naive = local time) or an age like '1h'."""
    text = text.strip()
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"expected ISO 8601 time (2026-01-31T18:00), unix seconds or an "
                         f"age like 90s/30m/2h/7d, got {text!r}") from None


def query(path: str | Path, source: str | None = None, since: float | None = None,
          until: float | None = None, limit: int = 1000,
          changes_only: bool = False) -> list[dict[str, Any]]:
    """The newest ``limit`` rows in [since, until], oldest first, as JSON-ready dicts."""
    if not 1 <= limit <= MAX_QUERY_ROWS:
        raise ValueError(f"limit must be in 1..{MAX_QUERY_ROWS}, got {limit}")
    where, args = ["1"], []
    for clause, value in (("source = ?", source), ("wall_time >= ?", since),
                          ("wall_time <= ?", until)):
        if value is not None:
            where.append(clause)
            args.append(value)
    if changes_only:
        where.append("changed = 1")
    sql = (f"SELECT * FROM (SELECT {', '.join(COLUMNS)} FROM predictions WHERE "
           f"{' AND '.join(where)} ORDER BY wall_time DESC, id DESC LIMIT ?) "
           f"ORDER BY wall_time, id")
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=5.0)
    try:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'predictions'"
                                  ).fetchone():
            return []  # the writer has created the file but not the table yet
        rows = connection.execute(sql, [*args, limit]).fetchall()
    finally:
        connection.close()
    return [_row_dict(row) for row in rows]


def _row_dict(row: tuple) -> dict[str, Any]:
    item = dict(zip(COLUMNS, row, strict=True))
    item["changed"] = bool(item["changed"])
    item["probabilities"] = json.loads(item["probabilities"])
    return item


def query_from_params(params: dict[str, list[str]],
                      ignore: tuple[str, ...] = ("token",)) -> dict[str, Any]:
    """/history?source=&since=&until=&limit=&changes= -> :func:`query` keyword arguments."""
    unknown = sorted(set(params) - set(_PARAMS) - set(ignore))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} (known: {', '.join(_PARAMS)})")
    one = {key: values[-1] for key, values in params.items() if key in _PARAMS}
    kwargs: dict[str, Any] = {"source": one.get("source") or None}
    for key in ("since", "until"):
        if one.get(key):
            try:
                kwargs[key] = parse_time(one[key])
            except ValueError as error:
                raise ValueError(f"{key}: {error}") from None
    try:
        kwargs["limit"] = int(one.get("limit") or DEFAULT_QUERY_ROWS)
    except ValueError:
        raise ValueError(f"limit: expected an integer, got {one['limit']!r}") from None
    kwargs["changes_only"] = one.get("changes", "").lower() in ("1", "true", "yes")
    return kwargs


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text: a header, ISO local time, probabilities as one JSON column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", *COLUMNS[1:]])
    for row in rows:
        iso = datetime.fromtimestamp(row["wall_time"]).astimezone().isoformat(
            timespec="milliseconds")
        writer.writerow([iso, *(json.dumps(row[c]) if c == "probabilities" else row[c]
                                for c in COLUMNS[1:])])
    return out.getvalue()
