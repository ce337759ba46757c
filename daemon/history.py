"""SQLite history of every source's predictions and label changes (one writer thread, WAL).

The event loop only enqueues rows (:meth:`History.record`, never blocks); a writer thread
commits them in batches at most ``commit_interval_seconds`` apart (a ``kill -9`` loses at
most that much) and prunes rows older than ``retention_days``. An unwritable path or a full
disk is an error state (:attr:`History.error`, shown in /healthz), never an exception into
the pipeline. Reading is daemon/history_query.py.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.history_query import COLUMNS as _COLUMNS
from daemon.history_query import SCHEMA as _SCHEMA
from daemon.history_query import query
from daemon.messages import Prediction
from daemon.schema import check
from models.statedir import state_dir

_LOGGER = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class HistoryConfig:
    """Prediction history in SQLite (config key ``history``)."""

    enabled: bool = True
    """Keep a history (GET /history, `genred history`)."""
    path: str | None = None
    """Database file; null = $XDG_STATE_HOME/genred/history.sqlite3 (~/.local/state/...)."""
    retention_days: float = 30.0
    """Rows older than this many days are deleted (hourly)."""
    commit_interval_seconds: float = 1.0
    """Longest time a row waits before it is committed (what a kill -9 can lose)."""
    queue_size: int = 10_000
    """Rows waiting for the writer; newer rows are dropped (and counted) beyond it."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(self.retention_days > 0, f"{path}.retention_days", "must be > 0",
              self.retention_days)
        check(0.01 <= self.commit_interval_seconds <= 60, f"{path}.commit_interval_seconds",
              "must be in [0.01, 60]", self.commit_interval_seconds)
        check(self.queue_size >= 1, f"{path}.queue_size", "must be >= 1", self.queue_size)

    def resolved_path(self) -> Path:
        """The database path (the default under the user's state directory)."""
        return Path(self.path).expanduser() if self.path else default_path()


def default_path() -> Path:
    """$XDG_STATE_HOME/genred/history.sqlite3, else ~/.local/state/genred/history.sqlite3."""
    return state_dir() / "history.sqlite3"


class History:
    """Records predictions from the event loop; a writer thread stores them in SQLite."""

    def __init__(self, config: HistoryConfig) -> None:
        self.config = config
        self.path = config.resolved_path()
        self._queue: queue.Queue[tuple | None] = queue.Queue(config.queue_size)
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._last_prune_monotonic = -math.inf
        self._announced = False
        self.error: str | None = None
        """Why the last write failed (None while writes succeed)."""
        self.rows_written = 0
        self.rows_dropped = 0
        """Rows not queued because the writer was behind (counted on the event loop)."""
        self.rows_failed = 0
        """Rows lost because their batch could not be written (counted by the writer)."""

    def start(self) -> None:
        """Start the writer thread (which opens the database)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._writer, name="genred-history",
                                            daemon=True)
            self._thread.start()

    def record(self, prediction: Prediction, changed: bool) -> None:
        """Queue one prediction (never blocks; counts a drop if the writer is behind)."""
        row = (prediction.source, prediction.wall_time, prediction.window_start_ms,
               prediction.window_end_ms, prediction.genre, prediction.confidence, int(changed),
               json.dumps(prediction.probabilities), prediction.model)
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.rows_dropped += 1

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Commit what is queued and stop the writer (blocking: call it off the loop)."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_seconds)
        except queue.Full:
            _LOGGER.warning("history: writer is stuck; not waiting for it")
            return
        self._thread.join(timeout_seconds)
        self._thread = None

    def health(self) -> dict[str, Any]:
        """The /healthz section: state ok/error, path, counts."""
        return {"state": "error" if self.error else "ok", "error": self.error,
                "path": str(self.path), "rows_written": self.rows_written,
                "rows_dropped": self.rows_dropped, "rows_failed": self.rows_failed,
                "rows_queued": self._queue.qsize()}

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        """:func:`daemon.history_query.query` on this database; [] before the first write."""
        return query(self.path, **kwargs) if self.path.is_file() else []

    def _writer(self) -> None:
        """Writer thread: open, then batch, commit, prune, until the None sentinel."""
        self._write([])  # open (or report the error state) at once, not at the first row
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=60.0)
            except queue.Empty:
                self._write([])
                continue
            batch, stopping = self._collect(first)
            self._write(batch)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _collect(self, first: tuple | None) -> tuple[list[tuple], bool]:
        """Rows arriving within commit_interval_seconds of ``first``; True on the sentinel."""
        if first is None:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.config.commit_interval_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[tuple]) -> None:
        """Insert and commit one batch, pruning hourly; a failure becomes the error state."""
        try:
            connection = self._connection or self._open()
            if batch:
                with connection:
                    connection.executemany(
                        f"INSERT INTO predictions ({', '.join(_COLUMNS[1:])}) "
                        f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})", batch)
                self.rows_written += len(batch)
            self._prune(connection)
        except (sqlite3.Error, OSError) as error:
            self.rows_failed += len(batch)
            if self.error is None:
                _LOGGER.error("history %s: %s (rows are dropped until it works again)",
                              self.path, error)
            self.error = f"{type(error).__name__}: {error}"
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            return
        if self.error is not None and batch:  # an open alone does not prove writes work
            _LOGGER.info("history %s: writing again", self.path)
            self.error = None

    def _open(self) -> sqlite3.Connection:
        """Create the folder and database; WAL, synchronous=NORMAL."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except sqlite3.Error:
            connection.close()
            raise
        self._connection = connection
        if not self._announced:  # reopened after every failed batch: said once
            _LOGGER.info("history: %s (keeping %g days)", self.path, self.config.retention_days)
            self._announced = True
        return connection

    def _prune(self, connection: sqlite3.Connection) -> None:
        """Delete rows older than retention_days, at most once per PRUNE_INTERVAL_SECONDS."""
        now = time.monotonic()
        if now - self._last_prune_monotonic < PRUNE_INTERVAL_SECONDS:
            return
        cutoff = time.time() - self.config.retention_days * 86400
        with connection:
            deleted = connection.execute("DELETE FROM predictions WHERE wall_time < ?",
                                         (cutoff,)).rowcount
        self._last_prune_monotonic = now
        if deleted:
            _LOGGER.info("history: pruned %d rows older than %g days", deleted,
                         self.config.retention_days)
