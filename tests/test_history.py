"""daemon/history.py on real SQLite files, and `genred history` as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from urllib.parse import parse_qs

import pytest

from daemon import history as history_module
from daemon.config import ConfigError, config_from_dict
from daemon.history import History, HistoryConfig, default_path
from daemon.history_query import PAGE_ROWS, next_page, parse_time, query, query_from_params
from daemon.messages import Prediction
from tests.conftest import REPO_ROOT


def prediction(source: str, genre: str, wall_time: float, confidence: float = 0.8) -> Prediction:
    return Prediction(source=source, window_start_ms=0, window_end_ms=30000, wall_time=wall_time,
                      genre=genre, confidence=confidence,
                      probabilities={"rock": confidence, "jazz": round(1 - confidence, 4)},
                      raw_probabilities={"rock": 0.5, "jazz": 0.5}, model="fake")


def wait_until(predicate, timeout_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def write_rows(path, rows, **config) -> History:
    history = History(HistoryConfig(path=str(path), **config))
    history.start()
    for source, genre, wall_time, changed in rows:
        history.record(prediction(source, genre, wall_time), changed)
    history.close()
    return history


def test_rows_survive_a_restart_and_filter(tmp_path):
    db = tmp_path / "h.sqlite3"
    now = time.time()
    write_rows(db, [("a", "rock", now - 30, True), ("b", "jazz", now - 20, True)])
    second = write_rows(db, [("a", "rock", now - 10, False), ("a", "jazz", now - 5, True)])
    assert second.health()["state"] == "ok" and second.rows_written == 2
    rows = query(db)
    assert [(r["source"], r["genre"]) for r in rows] == [
        ("a", "rock"), ("b", "jazz"), ("a", "rock"), ("a", "jazz")]
    assert rows[0]["probabilities"] == {"rock": 0.8, "jazz": 0.2} and rows[0]["changed"] is True
    json.dumps(rows)  # JSON-ready
    assert [r["wall_time"] for r in query(db, source="a", since=now - 12)] == [now - 10, now - 5]
    assert len(query(db, until=now - 15)) == 2
    assert [r["genre"] for r in query(db, source="a", changes_only=True)] == ["rock", "jazz"]
    newest = query(db, limit=2)
    assert [r["wall_time"] for r in newest] == [now - 10, now - 5]  # newest two, oldest first
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rows_are_committed_within_the_commit_interval(tmp_path):
    """What a kill -9 would keep: rows visible to another connection while the writer runs."""
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db), commit_interval_seconds=0.5))
    history.start()
    try:
        history.record(prediction("a", "rock", time.time()), True)
        started = time.monotonic()
        wait_until(lambda: db.exists() and len(query(db)) == 1, 5.0)
        assert time.monotonic() - started < 2.0
    finally:
        history.close()


def test_retention_prunes_at_start_and_while_running(tmp_path, monkeypatch):
    db = tmp_path / "h.sqlite3"
    now = time.time()
    write_rows(db, [("a", "rock", now - 3 * 86400, True), ("a", "jazz", now - 60, True)],
               retention_days=1.0)
    assert [r["genre"] for r in query(db)] == ["rock", "jazz"]  # pruned hourly: not yet
    write_rows(db, [], retention_days=1.0)  # a restart prunes at once
    assert [r["genre"] for r in query(db)] == ["jazz"]
    monkeypatch.setattr(history_module, "PRUNE_INTERVAL_SECONDS", 0.0)
    write_rows(db, [("a", "pop", now - 2 * 86400, True)], retention_days=1.0)
    assert [r["genre"] for r in query(db)] == ["jazz"]


@pytest.mark.parametrize("retention_days", [1.0, 0.5])
def test_retention_keeps_rows_just_inside_and_prunes_just_outside(tmp_path, retention_days):
    """Rows 1 h inside the retention are kept, rows 1 h outside it are pruned (units: days)."""
    db = tmp_path / "h.sqlite3"
    retention_hours, now = retention_days * 24, time.time()
    rows = [("a", "outside", now - (retention_hours + 1) * 3600, True),
            ("a", "inside", now - (retention_hours - 1) * 3600, True),
            ("a", "new", now - 60, True)]
    write_rows(db, rows, retention_days=retention_days)
    write_rows(db, [], retention_days=retention_days)  # a restart prunes at once
    assert [r["genre"] for r in query(db)] == ["inside", "new"]


def test_unwritable_path_is_an_error_state_then_recovers(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    history = History(HistoryConfig(path=str(blocker / "h.sqlite3"),
                                    commit_interval_seconds=0.05))
    history.start()
    try:
        history.record(prediction("a", "rock", time.time()), True)
        wait_until(lambda: history.rows_failed == 1)
        assert history.health()["state"] == "error" and "state" in history.health()["error"]
        assert history.health()["error"].startswith(("FileExistsError: ", "NotADirectoryError: "))
        history.record(prediction("a", "pop", time.time()), True)
        wait_until(lambda: history.rows_failed == 2)  # counted across batches
        blocker.unlink()
        history.record(prediction("a", "jazz", time.time()), True)
        wait_until(lambda: history.health()["state"] == "ok")
        assert history.health()["error"] is None
        history.record(prediction("a", "jazz", time.time()), False)
        wait_until(lambda: history.rows_written == 2)  # counted across batches
    finally:
        history.close()
    assert [r["genre"] for r in query(blocker / "h.sqlite3")] == ["jazz", "jazz"]


def test_full_queue_drops_without_blocking(tmp_path):
    history = History(HistoryConfig(path=str(tmp_path / "h.sqlite3"), queue_size=3))
    started = time.monotonic()
    for i in range(10):  # writer not started: nothing drains the queue
        history.record(prediction("a", "rock", float(i)), False)
    assert time.monotonic() - started < 0.5
    assert history.rows_dropped == 7 and history.health()["rows_queued"] == 3


def test_parse_time():
    assert parse_time("1700000000.5") == 1700000000.5
    assert parse_time("2h", now=10000.0) == 10000.0 - 7200
    assert parse_time("30m", now=10000.0) == 10000.0 - 1800
    assert parse_time("2026-01-31T18:00:00+00:00") == 1769882400.0
    for bad in ("yesterday", "", "nan", "5 parsecs"):
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_time(bad)


def test_config_paths_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "genred" / "history.sqlite3"
    assert config_from_dict({}).history.resolved_path() == default_path()
    config = config_from_dict({"history": {"path": "h.db"}}, base_dir=tmp_path)
    assert config.history.resolved_path() == tmp_path / "h.db"
    with pytest.raises(ConfigError, match=r"history\.retention_days: must be > 0"):
        config_from_dict({"history": {"retention_days": 0}})


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "daemon", "history", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_cli_csv_and_json(tmp_path):
    db = tmp_path / "h.sqlite3"
    now = time.time()
    write_rows(db, [("a", "rock", now - 7200, True), ("b", "jazz", now - 60, True),
                    ("a", "jazz", now - 30, False)])
    result = run_cli("--db", str(db), "--since", "1h", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [(r["source"], r["genre"]) for r in json.loads(result.stdout)] == [
        ("b", "jazz"), ("a", "jazz")]
    result = run_cli("--db", str(db), "--source", "a", "--csv")
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["genre"] for r in table] == ["rock", "jazz"]
    assert table[0]["changed"] == "True" and json.loads(table[0]["probabilities"])["rock"] == 0.8


def test_cli_errors(tmp_path):
    result = run_cli("--db", str(tmp_path / "h.sqlite3"), "--since", "last tuesday")
    assert result.returncode == 2
    assert "argument --since" in result.stderr and "ISO 8601" in result.stderr
    result = run_cli("--db", str(tmp_path / "missing.sqlite3"))
    assert result.returncode == 1 and "no history database" in result.stderr


def test_query_parameters_of_the_http_route():
    kwargs = query_from_params({"source": ["a"], "since": ["1h"], "limit": ["5"],
                                "changes": ["1"], "token": ["x"]})
    assert kwargs["source"] == "a" and kwargs["limit"] == 5 and kwargs["changes_only"]
    assert abs(kwargs["since"] - (time.time() - 3600)) < 5 and "until" not in kwargs
    assert query_from_params({}) == {"source": None, "limit": 1000, "changes_only": False,
                                     "page_rows": PAGE_ROWS}
    for params, match in (({"since": ["soon"]}, "since: expected ISO 8601"),
                          ({"limit": ["many"]}, "limit: expected an integer"),
                          ({"sorce": ["a"]}, "unknown parameter 'sorce'"),
                          ({"changes": ["maybe"]}, "changes: expected 1/true/yes"),
                          ({"after": ["soon,1"]}, "after: expected WALL_TIME,ID")):
        with pytest.raises(ValueError, match=match):
            query_from_params(params)


def test_pages_follow_one_another_exactly(tmp_path):
    """GET /history's pages and next links give the newest `limit` rows once, in order."""
    db = tmp_path / "h.sqlite3"
    now = time.time()
    write_rows(db, [("a", "rock", now - 100 + i // 2, i % 3 == 0) for i in range(23)])
    for params in ({"limit": ["17"]}, {"limit": ["17"], "changes": ["1"], "until": ["5s"]},
                   {"limit": ["100"], "since": ["95s"]}, {"limit": ["5"]}):
        expected = query(db, **{**query_from_params(params), "page_rows": None})
        collected, current = [], params
        while current is not None:
            page = query(db, **query_from_params(current, page_rows=5))
            assert len(page) <= 5
            collected += page
            following = next_page(current, page, page_rows=5)
            current = None if following is None else parse_qs(following)
        assert [r["id"] for r in collected] == [r["id"] for r in expected], params
        assert len(expected) == min(int(params["limit"][0]), len(query(db, **{
            **query_from_params({k: v for k, v in params.items() if k != "limit"}),
            "limit": 100, "page_rows": None})))


def test_cli_table_is_one_line_per_run_of_a_genre(tmp_path):
    db = tmp_path / "h.sqlite3"
    start = time.time() - 600
    write_rows(db, [("a", "rock", start, True), ("a", "rock", start + 2, False),
                    ("b", "jazz", start + 3, True), ("a", "rock", start + 4, False),
                    ("a", "jazz", start + 64, True), ("a", "jazz", start + 66, False),
                    ("a", "jazz", start + 500, True)])  # after a gap: a new run
    result = run_cli("--db", str(db))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "source", "genre", "confidence", "duration",
                                "predictions"]
    runs = [line.split()[2:] for line in lines[1:]]
    assert runs == [["a", "rock", "0.80", "1", "min", "04", "s", "3"],
                    ["b", "jazz", "0.80", "0", "s", "1"],
                    ["a", "jazz", "0.80", "2", "s", "2"],
                    ["a", "jazz", "0.80", "0", "s", "1"]]


def test_cli_unknown_source_lists_the_stored_ones(tmp_path):
    db = tmp_path / "h.sqlite3"
    write_rows(db, [("radio", "rock", time.time(), True), ("line-in", "jazz", time.time(), True)])
    result = run_cli("--db", str(db), "--source", "radoi")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"genred history: no source 'radoi' in {db} (sources: "
                                     f"line-in, radio)")


@pytest.mark.parametrize(("key", "good", "bad", "rule"), [
    ("retention_days", [0.001], [0.0, -1.0], "must be > 0"),
    ("commit_interval_seconds", [0.01, 60.0], [0.009, 60.5], "must be in [0.01, 60]"),
    ("queue_size", [1], [0], "must be >= 1"),
])
def test_config_limits_name_the_key(key, good, bad, rule):
    for value in good:
        config_from_dict({"history": {key: value}})
    for value in bad:
        with pytest.raises(ConfigError) as error:
            config_from_dict({"history": {key: value}})
        assert str(error.value) == f"history.{key}: {rule}, got {value!r}"


def test_every_field_of_a_row_and_the_health_counts(tmp_path):
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db)))
    assert history.query() == [] and history.health() == {
        "state": "ok", "error": None, "path": str(db), "rows_written": 0, "rows_dropped": 0,
        "rows_failed": 0, "rows_queued": 0}
    history.close()  # never started: nothing to wait for
    record = Prediction(source="kitchen", window_start_ms=1500, window_end_ms=31499,
                        wall_time=1_800_000_000.25, genre="jazz", confidence=0.61,
                        probabilities={"rock": 0.39, "jazz": 0.61},
                        raw_probabilities={"rock": 0.5, "jazz": 0.5}, model="m1")
    history.start()
    history.record(record, changed=False)
    history.close()
    [row] = history.query()
    assert {k: v for k, v in row.items() if k != "id"} == {
        "source": "kitchen", "wall_time": 1_800_000_000.25, "window_start_ms": 1500,
        "window_end_ms": 31499, "genre": "jazz", "confidence": 0.61, "changed": False,
        "probabilities": {"rock": 0.39, "jazz": 0.61}, "model": "m1"}
    assert history.health()["rows_written"] == 1 and history.health()["state"] == "ok"
