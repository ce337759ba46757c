"""History at its boundaries: retention cutoff and prune interval on a fixed clock, batching,
close on an idle or stuck writer, idle wake-ups, failures logged once, recovery (issue 25)."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import types

import pytest

from daemon import history as history_module
from daemon.history import History, HistoryConfig
from daemon.history_query import query
from tests.test_history import prediction, wait_until, write_rows


class FakeClock:
    """daemon.history's clock: a fixed wall time, and a monotonic time the test sets."""

    def __init__(self, wall: float, mono: float | None = None) -> None:
        self.wall, self.mono = wall, mono

    def time(self) -> float:
        """The fixed wall-clock time."""
        return self.wall

    def monotonic(self) -> float:
        """The set monotonic time (the real one when none is set)."""
        return time.monotonic() if self.mono is None else self.mono


@pytest.mark.parametrize("retention_days", [1.0, 0.5])
def test_retention_cutoff_to_the_hundredth_of_a_second(tmp_path, monkeypatch, retention_days):
    """With the clock fixed: a row exactly retention_days old is kept, 0.01 s older pruned."""
    now = 1_800_000_000.0
    monkeypatch.setattr(history_module, "time", FakeClock(now))
    db, cutoff = tmp_path / "h.sqlite3", now - retention_days * 86400
    rows = [("a", "older", cutoff - 0.01, True), ("a", "at-cutoff", cutoff, True),
            ("a", "newer", cutoff + 0.01, True), ("a", "hours-old", now - 3 * 3600, True)]
    write_rows(db, rows, retention_days=retention_days)
    write_rows(db, [], retention_days=retention_days)  # a restart prunes at once
    assert [r["genre"] for r in query(db)] == ["at-cutoff", "newer", "hours-old"]


def test_prune_runs_once_the_interval_has_passed_exactly(tmp_path, monkeypatch):
    """Pruned at the start, then not before PRUNE_INTERVAL_SECONDS of monotonic time."""
    now = 1_800_000_000.0
    clock = FakeClock(now, mono=1000.0)
    monkeypatch.setattr(history_module, "time", clock)
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db), retention_days=1.0))

    def run_writer() -> list[str]:
        history.start()
        history.close()  # the writer opens (and may prune), writes what is queued, stops
        return [r["genre"] for r in query(db)]

    history.record(prediction("a", "old", now - 2 * 86400), True)
    assert run_writer() == ["old"]  # pruned at 1000 s, before the old row was written
    clock.mono = 1000.0 + history_module.PRUNE_INTERVAL_SECONDS - 0.5
    assert run_writer() == ["old"]  # not yet: the interval has not passed
    clock.mono = 1000.0 + history_module.PRUNE_INTERVAL_SECONDS
    assert run_writer() == []  # exactly one interval later: pruned
    history.record(prediction("a", "old", now - 2 * 86400), True)
    clock.mono += history_module.PRUNE_INTERVAL_SECONDS - 0.5
    assert run_writer() == ["old"]  # the interval counts from the last prune


def wait_for_schema(db) -> None:
    """Wait until the writer has created the predictions table in ``db``."""
    def created() -> bool:
        if not db.exists():
            return False
        with sqlite3.connect(db) as connection:
            names = connection.execute("SELECT name FROM sqlite_master").fetchall()
        connection.close()
        return ("predictions",) in names

    wait_until(created)


def history_threads() -> list[threading.Thread]:
    """The running history writer threads."""
    return [thread for thread in threading.enumerate() if thread.name == "genred-history"]


def test_the_writer_is_one_named_daemon_thread_that_close_ends(tmp_path):
    """One daemon thread 'genred-history' (a stuck writer never holds the process's exit)."""
    before = history_threads()
    history = History(HistoryConfig(path=str(tmp_path / "h.sqlite3")))
    history.start()
    history.start()  # a second start changes nothing
    try:
        [thread] = [t for t in history_threads() if t not in before]
        assert thread.daemon
    finally:
        history.close()
    assert not thread.is_alive()
    history.close()  # closing again is harmless


def test_close_commits_and_closes_the_database(tmp_path):
    """close ends the writer and closes the database (the WAL file is gone), rows stored."""
    for name, commit_interval in (("batch", 30.0), ("idle", 0.05)):
        db = tmp_path / f"{name}.sqlite3"
        history = History(HistoryConfig(path=str(db), commit_interval_seconds=commit_interval))
        history.start()
        for i in range(3):
            history.record(prediction("a", "rock", 1_800_000_000.0 + i), False)
        if name == "idle":  # the stop sentinel arrives alone, not within a batch
            wait_until(lambda h=history: h.rows_written == 3)
        started = time.monotonic()
        history.close()
        assert time.monotonic() - started < 4.5, name  # not the commit interval (30 s),
        # nor close's 5-s timeout for a writer that missed the stop
        assert not (tmp_path / f"{name}.sqlite3-wal").exists(), name  # before a reader opens
        assert history.rows_written == 3 and len(query(db)) == 3, name


def test_rows_wait_for_the_commit_interval_to_be_committed_together(tmp_path):
    """A row is not committed at once: the writer waits commit_interval_seconds for more."""
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db), commit_interval_seconds=1.0))
    history.start()
    try:
        wait_for_schema(db)
        history.record(prediction("a", "rock", time.time()), True)
        time.sleep(0.3)
        history.record(prediction("a", "jazz", time.time()), True)
        time.sleep(0.3)
        assert history.query() == [] and history.rows_written == 0  # 0.6 s < 1 s: waiting
        wait_until(lambda: history.rows_written == 2)
        assert [r["genre"] for r in history.query()] == ["rock", "jazz"]
    finally:
        history.close()


def test_close_does_not_wait_for_a_stuck_writer(tmp_path, monkeypatch):
    """A writer that never reads its queue: close gives up after its timeout, full queue or not."""
    release = threading.Event()
    monkeypatch.setattr(History, "_writer", lambda self: release.wait(30.0))
    for queued in (0, 1):  # room for the stop sentinel; then a full queue
        history = History(HistoryConfig(path=str(tmp_path / "h.sqlite3"), queue_size=1))
        history.start()
        for _ in range(queued):
            history.record(prediction("a", "rock", time.time()), False)
        started = time.monotonic()
        history.close(timeout_seconds=0.2)
        assert time.monotonic() - started < 10.0, queued  # a stuck writer waits 30 s
    release.set()


def test_error_state_shows_at_start_and_an_open_alone_does_not_clear_it(tmp_path):
    """An unwritable path is an error before any row; a later open without rows keeps it."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    history = History(HistoryConfig(path=str(blocker / "h.sqlite3")))
    history.start()
    try:
        wait_until(lambda: history.health()["state"] == "error")
        assert history.rows_failed == 0 and history.rows_written == 0
        blocker.unlink()
    finally:
        history.close()  # the writer's last write opens the database, with no rows
    assert (blocker / "h.sqlite3").exists() and history.health()["state"] == "error"
    history.record(prediction("a", "rock", time.time()), True)
    history.start()
    history.close()
    assert history.health()["state"] == "ok" and history.rows_written == 1


def test_query_passes_its_filters_on(tmp_path):
    """History.query takes daemon.history_query.query's keyword filters."""
    db = tmp_path / "h.sqlite3"
    history = write_rows(db, [("a", "rock", 1_800_000_000.0, True),
                              ("b", "jazz", 1_800_000_001.0, True)])
    assert [r["source"] for r in history.query(source="b")] == ["b"]
    assert [r["source"] for r in history.query(limit=1)] == ["b"]


def test_missing_folders_are_created(tmp_path):
    """The database's folder is created with its missing parents."""
    db = tmp_path / "state" / "genred" / "h.sqlite3"
    write_rows(db, [("a", "rock", time.time(), True)])
    assert [r["genre"] for r in query(db)] == ["rock"]


def test_the_database_is_announced_once(tmp_path, caplog):
    """The path and retention are logged at the first open only, not at each reopen."""
    caplog.set_level(logging.INFO, logger="daemon.history")
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db), retention_days=2.5))
    for _ in range(2):  # each start opens the database again
        history.start()
        history.close()
    assert [r.getMessage() for r in caplog.records if "keeping" in r.getMessage()] == [
        f"history: {db} (keeping 2.5 days)"]


def test_a_failure_is_logged_once_until_writes_work_again(tmp_path, caplog):
    """Failing batches log one error; the recovery logs once; a new failure logs again."""
    caplog.set_level(logging.INFO, logger="daemon.history")
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    history = History(HistoryConfig(path=str(blocker / "h.sqlite3"),
                                    commit_interval_seconds=0.05))
    history.start()
    try:
        for count in (1, 2, 3):
            history.record(prediction("a", "rock", time.time()), True)
            wait_until(lambda n=count: history.rows_failed == n)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "rows are dropped until it works again" in errors[0].message
        blocker.unlink()
        history.record(prediction("a", "jazz", time.time()), True)
        wait_until(lambda: history.rows_written == 1)
    finally:
        history.close()
    assert sum("writing again" in r.getMessage() for r in caplog.records) == 1


class FastQueue(queue.Queue):
    """A queue whose waits last a thousandth of the timeout asked for (a minute: 60 ms)."""

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        """queue.Queue.get with the timeout scaled down."""
        return super().get(block, None if timeout is None else timeout / 1000)


@pytest.fixture
def fast_waits(monkeypatch):
    """daemon.history's queue waits (the idle wake-up, the commit interval) 1000 x shorter."""
    fast = types.SimpleNamespace(Queue=FastQueue, Empty=queue.Empty, Full=queue.Full)
    monkeypatch.setattr(history_module, "queue", fast)


def test_an_idle_writer_still_prunes_and_then_writes(tmp_path, monkeypatch, fast_waits):
    """With no rows arriving, the writer wakes (each minute) to prune; then rows still flow."""
    monkeypatch.setattr(history_module, "PRUNE_INTERVAL_SECONDS", 0.0)
    db = tmp_path / "h.sqlite3"
    history = History(HistoryConfig(path=str(db), retention_days=1.0))
    history.start()
    try:
        wait_for_schema(db)
        with sqlite3.connect(db) as connection:  # a row the writer never saw, 2 days old
            connection.execute("INSERT INTO predictions (source, wall_time, window_start_ms, "
                               "window_end_ms, genre, confidence, changed, probabilities, "
                               "model) VALUES ('a', ?, 0, 1, 'old', 0.5, 1, '{}', 'm')",
                               (time.time() - 2 * 86400,))
        connection.close()
        wait_until(lambda: query(db) == [])
        history.record(prediction("a", "rock", time.time()), True)
        wait_until(lambda: history.rows_written == 1)
    finally:
        history.close()
    assert [r["genre"] for r in query(db)] == ["rock"]


def test_an_idle_writer_in_the_error_state_keeps_trying(tmp_path, fast_waits):
    """While idle and failing, the writer retries the open; an open alone keeps the error."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    history = History(HistoryConfig(path=str(blocker / "h.sqlite3")))
    history.start()
    try:
        wait_until(lambda: history.health()["state"] == "error")
        time.sleep(0.3)  # a few idle wake-ups, each failing to open
        blocker.unlink()
        wait_until((blocker / "h.sqlite3").exists)  # opened by an idle wake-up
        time.sleep(0.2)
        assert history.health()["state"] == "error"  # no row written yet
        history.record(prediction("a", "rock", time.time()), True)
        wait_until(lambda: history.health()["state"] == "ok")
    finally:
        history.close()
    assert history.rows_written == 1 and history.rows_failed == 0


def test_a_lost_table_then_an_unwritable_folder_then_recovery(tmp_path):
    """A batch failing on the open database, then a failing reopen: the writer lives on."""
    folder = tmp_path / "state"
    history = History(HistoryConfig(path=str(folder / "h.sqlite3"),
                                    commit_interval_seconds=0.05))
    history.start()
    try:
        history.record(prediction("a", "rock", time.time()), True)
        wait_until(lambda: history.rows_written == 1)
        folder.rename(tmp_path / "moved")  # the open connection follows the moved files
        with sqlite3.connect(tmp_path / "moved" / "h.sqlite3") as connection:
            connection.execute("DROP TABLE predictions")
        connection.close()
        folder.write_text("a file where the folder should be")
        history.record(prediction("a", "pop", time.time()), True)
        wait_until(lambda: history.rows_failed == 1)  # the insert failed: no such table
        history.record(prediction("a", "pop", time.time()), True)
        wait_until(lambda: history.rows_failed == 2)  # the reopen failed: not a folder
        folder.unlink()
        history.record(prediction("a", "jazz", time.time()), True)
        wait_until(lambda: history.health()["state"] == "ok")
    finally:
        history.close()
    assert [r["genre"] for r in query(folder / "h.sqlite3")] == ["jazz"]
