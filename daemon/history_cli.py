"""``genred history``: the stored predictions as a table of genre runs, CSV or JSON."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from daemon.config import ConfigError, read_config

EXIT_BAD_INPUT = 2


def _time_arg(text: str) -> float:
    """argparse type: a time as daemon.history.parse_time reads it."""
    from daemon.history_query import parse_time

    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_history(subparsers: argparse._SubParsersAction) -> None:
    """Register ``history`` on the genred command's subparsers."""
    history = subparsers.add_parser(
        "history", help="print the stored predictions (newest LIMIT, oldest first)",
        description="Times: ISO 8601 (local time unless it has an offset), unix seconds, or "
                    "an age such as 90s, 30m, 2h, 7d.")
    history.add_argument("--source", help="only this source")
    history.add_argument("--since", type=_time_arg, help="from this time (e.g. 1h, 2026-01-31)")
    history.add_argument("--until", type=_time_arg, help="up to this time")
    history.add_argument("--limit", type=int, default=1000, help="most rows (default: %(default)s)")
    history.add_argument("--changes", action="store_true", help="only label changes")
    history.add_argument("--format", choices=("table", "csv", "json"), default="table",
                         help="table: one line per run of a genre (time, source, genre, "
                              "confidence, duration); csv/json: every row (default: "
                              "%(default)s)")
    history.add_argument("--csv", dest="format", action="store_const", const="csv",
                         help="every row as CSV (= --format csv)")
    history.add_argument("--json", dest="format", action="store_const", const="json",
                         help="every row as JSON (= --format json)")
    history.add_argument("--db", help="database file (default: history.path of --config, else "
                                      "$XDG_STATE_HOME/genred/history.sqlite3)")
    history.add_argument("--config", help="take the database path from this config file")
    history.set_defaults(handler=_history_command)


def _history_command(args: argparse.Namespace) -> int:
    from daemon.history import HistoryConfig
    from daemon.history_query import query, rows_to_csv
    from daemon.history_table import runs_table, stored_sources

    try:
        config = read_config(args.config).history if args.config else HistoryConfig()
    except ConfigError as error:
        print(f"genred history: config error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = Path(args.db) if args.db else config.resolved_path()
    if not path.is_file():
        print(f"genred history: no history database at {path}", file=sys.stderr)
        return 1
    try:
        rows = query(path, source=args.source, since=args.since, until=args.until,
                     limit=args.limit, changes_only=args.changes)
    except ValueError as error:
        print(f"genred history: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except sqlite3.Error as error:
        print(f"genred history: cannot read {path}: {error}", file=sys.stderr)
        return 1
    if not rows and args.source:
        known = stored_sources(path)
        if args.source not in known:
            print(f"genred history: no source {args.source!r} in {path} (sources: "
                  f"{', '.join(known) or 'none yet'})", file=sys.stderr)
            return EXIT_BAD_INPUT
    formats = {"json": lambda: json.dumps(rows, indent=1) + "\n", "csv": lambda: rows_to_csv(rows),
               "table": lambda: runs_table(rows)}
    sys.stdout.write(formats[args.format]())
    return 0
