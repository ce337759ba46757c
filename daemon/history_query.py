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
from urllib.parse import urlencode

MAX_QUERY_ROWS = 100_000
DEFAULT_QUERY_ROWS = 1000
PAGE_ROWS = 5000
"""Most rows in one GET /history answer; the rest follow its ``Link: <...>; rel="next"``."""
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
_PARAMS = ("source", "since", "until", "limit", "changes", "after")
_TRUE, _FALSE = {"1", "true", "yes"}, {"", "0", "false", "no"}


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


Cursor = tuple[float, int]
"""A row's place in the history's order: (wall_time, id)."""


def query(path: str | Path, source: str | None = None, since: float | None = None,
          until: float | None = None, limit: int = 1000, changes_only: bool = False,
          after: Cursor | None = None, page_rows: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` rows in [since, until], oldest first, as JSON-ready dicts.

    With ``after``: the oldest ``limit`` rows after that cursor instead. With ``page_rows``:
    only the oldest ``page_rows`` of them (the next page starts after the last one).
    """
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
    page = limit if page_rows is None else min(limit, page_rows)
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=5.0)
    try:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'predictions'"
                                  ).fetchone():
            return []  # the writer has created the file but not the table yet
        if after is None and page < limit:  # the oldest page of the newest `limit` rows
            after = _nth_newest(connection, where, args, limit) or (-math.inf, 0)
            inclusive = True
        else:
            inclusive = False
        rows = connection.execute(*_page_sql(where, args, after, inclusive, page)).fetchall()
    finally:
        connection.close()
    return [_row_dict(row) for row in rows]


def _nth_newest(connection: sqlite3.Connection, where: list[str], args: list[Any],
                n: int) -> Cursor | None:
    """The cursor of the n-th newest matching row (None: fewer rows match)."""
    row = connection.execute(
        f"SELECT wall_time, id FROM predictions WHERE {' AND '.join(where)} "
        f"ORDER BY wall_time DESC, id DESC LIMIT 1 OFFSET ?", [*args, n - 1]).fetchone()
    return None if row is None else (row[0], row[1])


def _page_sql(where: list[str], args: list[Any], after: Cursor | None, inclusive: bool,
              page: int) -> tuple[str, list[Any]]:
    """SQL of one page: the newest ``page`` rows, or the oldest from the cursor on."""
    columns = ", ".join(COLUMNS)
    if after is None:
        return (f"SELECT * FROM (SELECT {columns} FROM predictions WHERE "
                f"{' AND '.join(where)} ORDER BY wall_time DESC, id DESC LIMIT ?) "
                f"ORDER BY wall_time, id", [*args, page])
    relation = ">=" if inclusive else ">"
    where = [*where, f"wall_time >= ? AND (wall_time > ? OR id {relation} ?)"]
    return (f"SELECT {columns} FROM predictions WHERE {' AND '.join(where)} "
            f"ORDER BY wall_time, id LIMIT ?", [*args, after[0], after[0], after[1], page])


def _row_dict(row: tuple) -> dict[str, Any]:
    item = dict(zip(COLUMNS, row, strict=True))
    item["changed"] = bool(item["changed"])
    item["probabilities"] = json.loads(item["probabilities"])
    return item


def query_from_params(params: dict[str, list[str]], ignore: tuple[str, ...] = ("token",),
                      page_rows: int = PAGE_ROWS) -> dict[str, Any]:
    """/history?source=&since=&until=&limit=&changes=&after= -> :func:`query` arguments."""
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
    changes = one.get("changes", "").strip().lower()
    if changes not in _TRUE | _FALSE:
        raise ValueError(f"changes: expected 1/true/yes or 0/false/no, got {one['changes']!r}")
    kwargs["changes_only"] = changes in _TRUE
    if one.get("after"):
        kwargs["after"] = _parse_cursor(one["after"])
    kwargs["page_rows"] = page_rows
    return kwargs


def _parse_cursor(text: str) -> Cursor:
    """'WALL_TIME,ID' (a next link's ``after``) -> (wall_time, id)."""
    wall_time, _, row_id = text.partition(",")
    try:
        cursor = (float(wall_time), int(row_id))
    except ValueError:
        cursor = (math.nan, 0)
    if not math.isfinite(cursor[0]):
        raise ValueError(f"after: expected WALL_TIME,ID from a next link, got {text!r}")
    return cursor


def next_page(params: dict[str, list[str]], rows: list[dict[str, Any]],
              page_rows: int = PAGE_ROWS) -> str | None:
    """The query string of the page after ``rows`` (the answer to ``params``); None: last.

    ``since`` is left out (the cursor is past it) and ``until`` is pinned to unix seconds,
    so the pages of one request do not drift with the clock.
    """
    kwargs = query_from_params(params, page_rows=page_rows)
    if len(rows) < kwargs["page_rows"] or kwargs["limit"] <= kwargs["page_rows"]:
        return None
    last = rows[-1]
    following = {"source": kwargs["source"],
                 "until": repr(kwargs["until"]) if "until" in kwargs else None,
                 "changes": "1" if kwargs["changes_only"] else None,
                 "limit": str(kwargs["limit"] - kwargs["page_rows"]),
                 "after": f"{last['wall_time']!r},{last['id']}"}
    return urlencode({key: value for key, value in following.items() if value is not None})


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
